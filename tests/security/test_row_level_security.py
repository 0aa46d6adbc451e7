"""Postgres row-level security: the second wall, checked with raw SQL that has no tenant filter.

The `connection` fixture is connected as the service's own role (neither superuser nor
BYPASSRLS), so what these queries see is what a forgotten `WHERE tenant_id = ...` would see.
"""

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import SYSTEM_TENANT_ID
from tests.conftest import APP_ROLE, Database, Tenant
from tests.security.support import EVIDENCE, World, as_tenant, same_uuid

pytestmark = pytest.mark.anyio

TENANT_TABLES = (
    "subject",
    "assessment",
    "rating",
    "completed_activity",
    "audit_event",
    "framework",
    "framework_version",
    "api_key",
)
# Tables with a tenant_id but deliberately without row-level security, and the only columns
# they may have: the webhook dispatcher's cross-tenant work queue holds ids and times only; the
# rate limiter's buckets (one autocommit statement before any tenant transaction) ids, numbers
# and a time.
RLS_EXEMPT = {
    "webhook_queue": {"delivery_id", "tenant_id", "next_attempt_at"},
    "rate_limit_bucket": {"tenant_id", "key_id", "tokens", "granted", "updated_at"},
}
PRIVATE_TABLES = ("subject", "assessment", "rating", "completed_activity", "audit_event")
# Built-in rows (the system tenant's) are readable by every tenant; a tenant's own by it alone.
TEMPLATE_TABLES = ("framework", "framework_version", "case_identifier")


@pytest.fixture(autouse=True)
def _postgres_only(database: Database) -> None:
    if database.backend != "postgres":
        pytest.skip("row-level security is a Postgres feature")


async def _tenants_in(connection: AsyncConnection, table: str) -> list[Any]:
    # Deliberately no WHERE clause: only row-level security stands between tenants here.
    rows = (await connection.execute(text(f"SELECT * FROM {table}"))).mappings().all()
    return [row["tenant_id"] for row in rows]


def _count(tenant_ids: list[Any], tenant: uuid.UUID) -> int:
    return sum(1 for t in tenant_ids if same_uuid(t, tenant))


async def _private_tables(connection: AsyncConnection) -> list[str]:
    """The named private tables plus any later table with a tenant_id (bar the exemptions)."""
    rows = await connection.execute(
        text(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        )
    )
    found = set(rows.scalars()) - set(TEMPLATE_TABLES) - {"api_key"} - set(RLS_EXEMPT)
    return sorted(found | set(PRIVATE_TABLES))


async def test_another_tenant_sees_none_of_a_rows(
    world_a: World, tenant_b: Tenant, b_subject: str, connection: AsyncConnection
) -> None:
    a = world_a.tenant.id
    private = await _private_tables(connection)
    await as_tenant(connection, a)
    for table in (*PRIVATE_TABLES, *TEMPLATE_TABLES, "idempotency_record", "webhook_delivery"):
        # Positive control: the rows exist and A sees them.
        assert _count(await _tenants_in(connection, table), a) > 0, table

    await as_tenant(connection, tenant_b.id)
    for table in (*private, *TEMPLATE_TABLES):
        seen = await _tenants_in(connection, table)
        assert _count(seen, a) == 0, f"B sees A's rows in {table}"
        allowed = {tenant_b.id, SYSTEM_TENANT_ID} if table in TEMPLATE_TABLES else {tenant_b.id}
        assert all(any(same_uuid(t, x) for x in allowed) for t in seen), table
    assert _count(await _tenants_in(connection, "subject"), tenant_b.id) == 1  # B's own
    for table in TEMPLATE_TABLES:  # the built-in ladder stays readable
        assert _count(await _tenants_in(connection, table), SYSTEM_TENANT_ID) > 0, table
    hits = (
        await connection.execute(
            text("SELECT count(*) FROM rating WHERE evidence LIKE :e"), {"e": f"%{EVIDENCE}%"}
        )
    ).scalar_one()
    assert hits == 0


async def test_without_a_tenant_no_private_row_is_visible(
    world_a: World, connection: AsyncConnection
) -> None:
    await as_tenant(connection, None)
    for table in await _private_tables(connection):
        assert await _tenants_in(connection, table) == [], table
    for table in TEMPLATE_TABLES:
        seen = await _tenants_in(connection, table)
        assert seen, table
        assert all(same_uuid(t, SYSTEM_TENANT_ID) for t in seen), table


async def test_another_tenant_cannot_write_a_rows(
    world_a: World, tenant_b: Tenant, connection: AsyncConnection
) -> None:
    a = {"a": str(world_a.tenant.id), "system": str(SYSTEM_TENANT_ID)}
    await as_tenant(connection, tenant_b.id)
    for statement in (
        "UPDATE subject SET display_name = 'pwned' WHERE tenant_id = :a",
        "DELETE FROM rating WHERE tenant_id = :a",
        "DELETE FROM assessment WHERE tenant_id = :a",
        "UPDATE audit_event SET action = 'pwned' WHERE tenant_id = :a",
        "DELETE FROM completed_activity WHERE tenant_id = :a",
        "UPDATE framework SET name = 'pwned' WHERE tenant_id IN (:a, :system)",
        "UPDATE framework_version SET status = 'archived' WHERE tenant_id IN (:a, :system)",
        "DELETE FROM framework_version WHERE tenant_id IN (:a, :system)",
        # Keys are readable for authentication, but only their tenant may change them.
        "UPDATE api_key SET revoked_at = now(), scopes = '[\"admin\"]' WHERE tenant_id = :a",
        "DELETE FROM api_key WHERE tenant_id = :a",
    ):
        result = await connection.execute(text(statement), a)
        assert result.rowcount == 0, statement

    for statement in (
        "INSERT INTO subject (tenant_id, id, external_ref, attributes, revision, created_at,"
        " updated_at) VALUES (:a, gen_random_uuid(), 'planted', '{}', 1, now(), now())",
        "INSERT INTO audit_event (tenant_id, id, occurred_at, action, object_type, object_id,"
        " details) VALUES (:a, gen_random_uuid(), now(), 'forged', 'x', 'x', '{}')",
    ):
        savepoint = await connection.begin_nested()
        with pytest.raises(DBAPIError, match="row-level security"):
            await connection.execute(text(statement), a)
        await savepoint.rollback()

    await as_tenant(connection, world_a.tenant.id)
    row = (
        await connection.execute(
            text("SELECT display_name FROM subject WHERE external_ref = :r"),
            {"r": world_a.subject_ref},
        )
    ).one()
    assert row.display_name != "pwned"
    revoked = (
        await connection.execute(
            text("SELECT count(*) FROM api_key WHERE tenant_id = :a AND revoked_at IS NOT NULL"),
            a,
        )
    ).scalar_one()
    assert revoked == 0
    ratings = (
        await connection.execute(text("SELECT count(*) FROM rating WHERE tenant_id = :a"), a)
    ).scalar_one()
    assert ratings == 2


async def _columns(connection: AsyncConnection, table: str) -> set[str]:
    rows = await connection.execute(
        text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass)"
            " AND attnum > 0 AND NOT attisdropped"
        ),
        {"t": table},
    )
    return set(rows.scalars())


async def test_every_tenant_table_forces_row_level_security(connection: AsyncConnection) -> None:
    rows = (
        (
            await connection.execute(
                text(
                    """
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       pg_get_userbyid(c.relowner) AS owner,
                       pg_has_role(current_user, c.relowner, 'MEMBER') AS member_of_owner,
                       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
                       EXISTS (
                         SELECT 1 FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                           AND NOT a.attisdropped
                       ) AS has_tenant_id
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                """
                )
            )
        )
        .mappings()
        .all()
    )
    tables = {row["relname"]: row for row in rows}
    # Every table with a tenant_id column is tenant-owned, including ones added later.
    tenant_owned = set(TENANT_TABLES) | {
        name for name, row in tables.items() if row["has_tenant_id"]
    }
    for name, allowed in RLS_EXEMPT.items():
        if name in tables:
            columns = await _columns(connection, name)
            assert columns <= allowed, f"{name} is exempt from RLS but holds {columns - allowed}"
    tenant_owned -= set(RLS_EXEMPT)
    for name in sorted(tenant_owned):
        assert name in tables, f"{name} is missing"
        row = tables[name]
        assert row["relrowsecurity"], f"{name}: row-level security is not enabled"
        assert row["relforcerowsecurity"], f"{name}: row-level security is not forced"
        assert row["policies"] > 0, f"{name}: no policy"
        assert row["owner"] != APP_ROLE, f"{name} is owned by the app role"
        assert not row["member_of_owner"], f"the app role is a member of {name}'s owner"


async def test_app_role_cannot_bypass_row_level_security(connection: AsyncConnection) -> None:
    row = (
        await connection.execute(
            text(
                "SELECT current_user AS me, rolsuper, rolbypassrls "
                "FROM pg_roles WHERE rolname = current_user"
            )
        )
    ).one()
    assert row.me == APP_ROLE
    assert row.rolsuper is False
    assert row.rolbypassrls is False
