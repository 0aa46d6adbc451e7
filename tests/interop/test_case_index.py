"""The CASE identifier index: lookups read one row, follow drafts, shadowing and tenancy, and the
migration indexes the versions that existed before it."""

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.principal import Principal
from app.config import PROJECT_ROOT, Settings
from app.db import bind_tenant, create_engine
from app.frameworks import service
from app.frameworks.document import dump_document, parse_document
from app.frameworks.files import load_file
from app.interop import case
from app.models import SYSTEM_TENANT_ID, CaseIdentifier, Framework, FrameworkVersion
from app.models import Tenant as TenantRow
from tests.conftest import Tenant, _admin_execute, make_postgres_database, run
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

CASE = "/ims/case/v1p1"
LADDER = PROJECT_ROOT / "app" / "frameworks" / "builtin" / "product-management.yaml"


def _ids(tenant: uuid.UUID, key: str = "eng-ladder", version: int = 1) -> case.CaseIds:
    return case.CaseIds(owner=tenant, key=key, version=version)


async def _create(client: httpx.AsyncClient, tenant: Tenant, **changes: Any) -> None:
    r = await client.post(
        "/v1/frameworks",
        json=small_framework(**changes),
        params={"publish": "true"},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text


class _Statements:
    """Counts the SQL statements run on the test's connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.count = 0
        event.listen(connection.sync_connection, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    async def of(self, coro: Any) -> tuple[httpx.Response, int]:
        before = self.count
        response = await coro
        return response, self.count - before


async def test_a_lookup_costs_the_same_statements_however_many_frameworks_there_are(
    client: httpx.AsyncClient, tenant_a: Tenant, connection: AsyncConnection
) -> None:
    await _create(client, tenant_a)
    statements = _Statements(connection)
    item = _ids(tenant_a.id).of("competency", "coding")
    paths = [
        f"{CASE}/CFItems/{item}",
        f"{CASE}/CFDocuments/{_ids(tenant_a.id).document}",
        f"{CASE}/CFPackages/{_ids(tenant_a.id).document}",
        f"{CASE}/CFDocuments",
    ]

    async def read_all() -> list[int]:
        counts = []
        for path in paths:
            r, n = await statements.of(client.get(path, headers=tenant_a.headers))
            assert r.status_code == 200, r.text
            counts.append(n)
        return counts

    cold = await read_all()  # the first read of a version also reads its document
    few = await read_all()
    assert few[0] == cold[0] - 1
    for n in range(12):
        await _create(client, tenant_a, key=f"ladder-{n}", name=f"Ladder {n}")
    await read_all()  # the list reads the new frameworks' documents, in one statement
    assert await read_all() == few


async def test_a_draft_update_moves_its_identifiers(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    r = await client.post("/v1/frameworks", json=small_framework(), headers=h)
    assert r.status_code == 201, r.text
    changed = small_framework()
    changed["competencies"][0]["key"] = "programming"
    for activity in changed["activities"]:
        if "coding" in activity["develops"]:
            activity["develops"]["programming"] = activity["develops"].pop("coding")
    r = await client.put(
        "/v1/frameworks/eng-ladder/versions/1",
        json=changed,
        headers={**h, "If-Match": r.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    ids = _ids(tenant_a.id)
    old = await client.get(f"{CASE}/CFItems/{ids.of('competency', 'coding')}", headers=h)
    assert old.status_code == 404
    new = await client.get(f"{CASE}/CFItems/{ids.of('competency', 'programming')}", headers=h)
    assert new.status_code == 200, new.text
    assert new.json()["humanCodingScheme"] == "programming"


async def shadow_a_builtin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """The tenant's eng-ladder, then a built-in "Built-in engineering" added with its key
    (as a new built-in file would be)."""
    await _create(client, tenant)
    system = Principal(tenant_id=SYSTEM_TENANT_ID, key_id=None, scopes=frozenset({"admin"}))
    async with tenant.sessionmaker() as session:
        await bind_tenant(session, SYSTEM_TENANT_ID)
        doc = parse_document(small_framework(name="Built-in engineering"))
        await service.create(session, system, doc, publish=True)
        await session.commit()


async def test_a_tenants_framework_shadows_a_builtin_with_its_key(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await shadow_a_builtin(client, tenant_a)
    builtin = _ids(SYSTEM_TENANT_ID).document
    own = _ids(tenant_a.id).document
    for tenant, path, status in (
        (tenant_a, f"{CASE}/CFDocuments/{builtin}", 404),
        (tenant_a, f"{CASE}/CFItems/{_ids(SYSTEM_TENANT_ID).of('competency', 'coding')}", 404),
        (tenant_a, f"{CASE}/CFDocuments/{own}", 200),
        (tenant_b, f"{CASE}/CFDocuments/{builtin}", 200),
        (tenant_b, f"{CASE}/CFPackages/{own}", 404),
    ):
        r = await client.get(path, headers=tenant.headers)
        assert r.status_code == status, (tenant.slug, path, r.text)
    r = await client.get(f"{CASE}/CFDocuments/{builtin}", headers=tenant_b.headers)
    assert r.json()["title"] == "Built-in engineering"
    for tenant, titles in (
        (tenant_a, ["Engineering ladder", "Product Management Career Ladder"]),
        (tenant_b, ["Built-in engineering", "Product Management Career Ladder"]),
    ):
        r = await client.get(f"{CASE}/CFDocuments", headers=tenant.headers)
        assert [d["title"] for d in r.json()["CFDocuments"]] == titles


async def test_the_index_holds_exactly_each_versions_identifiers(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await _create(client, tenant_a)
    r = await client.post(
        "/v1/frameworks/eng-ladder/clone", json={"key": "copy"}, headers=tenant_a.headers
    )
    assert r.status_code == 201, r.text
    async with tenant_a.sessionmaker() as session:
        await bind_tenant(session, tenant_a.id)
        rows = (
            await session.exec(
                select(CaseIdentifier.identifier, CaseIdentifier.kind).where(  # type: ignore[call-overload]
                    CaseIdentifier.tenant_id == tenant_a.id
                )
            )
        ).all()
    content = dump_document(parse_document(small_framework()))
    expected = case.identifiers(content, _ids(tenant_a.id)) | case.identifiers(
        content, _ids(tenant_a.id, "copy")
    )
    assert {(str(i), k) for i, k in rows} == set(expected.items())


# --- The migration indexes what existed before it -------------------------------------------------


def _config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["configure_logging"] = False
    return cfg


async def _seed(url: str, postgres: bool) -> dict[str, str]:
    """Versions written before revision 0008: a built-in and a tenant's two versions."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    ladder = dump_document(parse_document(load_file(LADDER.read_bytes(), LADDER.name)))
    small = dump_document(parse_document(small_framework()))
    tenant = uuid.uuid4()
    expected: dict[str, str] = {}
    engine = create_engine(Settings(), url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(TenantRow.__table__),  # type: ignore[attr-defined]
                # The system tenant is made by the first migration.
                [{"id": tenant, "slug": "acme", "name": "Acme", "created_at": now}],
            )
            for owner, key, contents in (
                (SYSTEM_TENANT_ID, "product-management", [ladder]),
                (tenant, "eng-ladder", [small, small]),
            ):
                fw = uuid.uuid4()
                if postgres:  # row-level security: write as the owning tenant
                    await conn.execute(
                        text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(owner)}
                    )
                await conn.execute(
                    insert(Framework.__table__),  # type: ignore[attr-defined]
                    [
                        {
                            "tenant_id": owner,
                            "id": fw,
                            "key": key,
                            "name": key,
                            "description": "",
                            "is_builtin": owner == SYSTEM_TENANT_ID,
                            "cloned_from": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                    ],
                )
                for number, content in enumerate(contents, start=1):
                    await conn.execute(
                        insert(FrameworkVersion.__table__),  # type: ignore[attr-defined]
                        [
                            {
                                "tenant_id": owner,
                                "id": uuid.uuid4(),
                                "framework_id": fw,
                                "version": number,
                                "status": "published",
                                "content": content,
                                "revision": 1,
                                "created_at": now,
                                "updated_at": now,
                                "published_at": now,
                            }
                        ],
                    )
                    expected |= case.identifiers(content, _ids(owner, key, number))
    finally:
        await engine.dispose()
    return expected


async def _indexed(url: str) -> dict[str, str]:
    engine = create_engine(Settings(), url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(CaseIdentifier.identifier, CaseIdentifier.kind)  # type: ignore[call-overload]
            )
            return {str(i): k for i, k in rows}
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class EmptyDatabase:
    migrate_url: str  # who runs the migrations and writes the seed
    inspect_url: str  # who reads the result (a superuser on Postgres: row-level security aside)
    postgres: bool


@pytest.fixture(params=["postgres", "postgres-owner", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[EmptyDatabase]:
    """A new database; "postgres-owner" is owned and migrated by a role that is no superuser,
    so row-level security applies to the migration itself (the production set-up)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/index.db"
        yield EmptyDatabase(url, url, postgres=False)
        return
    name, url, drop = make_postgres_database()
    role = f"ladder_owner_{uuid.uuid4().hex[:10]}"
    migrate_url = url
    if request.param == "postgres-owner":
        run(
            _admin_execute(
                [
                    f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS",
                    f'ALTER DATABASE "{name}" OWNER TO {role}',
                ]
            )
        )
        run(_admin_execute([f"ALTER SCHEMA public OWNER TO {role}"], database=name))
        migrate_url = make_url(url).set(username=role).render_as_string(hide_password=False)
    try:
        yield EmptyDatabase(migrate_url, url, postgres=True)
    finally:
        drop()
        run(_admin_execute([f"DROP ROLE IF EXISTS {role}"]))


def test_the_migration_indexes_existing_versions(empty_database: EmptyDatabase) -> None:
    db = empty_database
    cfg = _config(db.migrate_url)
    command.upgrade(cfg, "0007")
    expected = asyncio.run(_seed(db.migrate_url, db.postgres))
    assert len(expected) == 2 * 11 + 22  # 1 document + areas, competencies, levels per version
    command.upgrade(cfg, "0008")
    assert asyncio.run(_indexed(db.inspect_url)) == expected
    command.downgrade(cfg, "0007")
    command.upgrade(cfg, "head")
    assert asyncio.run(_indexed(db.inspect_url)) == expected
