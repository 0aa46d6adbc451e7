"""One unit of work per request: the session dependency commits once, nothing else commits.

The static half reads app/ with ``ast``: only ``app/db.py`` (the unit of work itself) may call
``commit()``. The runtime half runs requests on a real engine (no test transaction around them)
and counts the COMMITs the database receives for each, and records every ``set_config`` the
app sends, which must be transaction-local so the tenant never outlives its transaction (safe
behind a transaction-mode pooler such as PgBouncer).
"""

import ast
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import service as auth_service
from app.config import Settings
from app.db import create_engine, make_sessionmaker, unit_of_work
from app.main import create_app
from tests.api.test_subjects_assessments import assessment, subject
from tests.conftest import Database

APP = Path(__file__).resolve().parent.parent / "app"
MIGRATIONS = APP.parent / "migrations"

# The unit of work: the one place allowed to commit (CommitAwareSession and unit_of_work).
COMMITS_ALLOWED_IN = {"db.py"}


def _commit_calls(path: Path) -> Iterator[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "commit"
        ):
            yield node.lineno


def test_nothing_in_app_commits_but_the_unit_of_work() -> None:
    """Routers, services, repositories, helpers, the CLI and the dispatcher never commit."""
    found = [
        f"{path.relative_to(APP)}:{line}"
        for path in sorted(APP.rglob("*.py"))
        if str(path.relative_to(APP)) not in COMMITS_ALLOWED_IN
        for line in _commit_calls(path)
    ]
    assert found == [], "commit() outside app/db.py's unit of work: " + ", ".join(found)


SET_CONFIG = re.compile(r"set_config\s*\(", re.IGNORECASE)


def test_every_set_config_in_app_is_transaction_local() -> None:
    """Each set_config the code holds passes is_local = true (the third argument), the
    database functions the migrations create included."""
    offending = []
    sources = [*sorted(APP.rglob("*.py")), *sorted(MIGRATIONS.rglob("*.py"))]
    assert any("set_config" in path.read_text() for path in MIGRATIONS.rglob("*.py"))
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SET_CONFIG.search(line) and not re.search(r",\s*(true|True)\s*\)", line):
                offending.append(f"{path.relative_to(APP.parent)}:{number}: {line.strip()}")
    assert offending == []


@dataclass
class Recorder:
    """What the database was sent: COMMITs, and the is_local argument of each set_config."""

    commits: int = 0
    set_configs: list[tuple[str, Any]] = field(default_factory=list)

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "commit", self._commit)
        event.listen(engine.sync_engine, "before_cursor_execute", self._execute)

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def _execute(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if SET_CONFIG.search(statement):
            self.set_configs.append((statement, parameters))

    def take_commits(self) -> int:
        count, self.commits = self.commits, 0
        return count


def _is_local(statement: str, parameters: Any) -> bool:
    """The third argument of set_config: a literal, or the bound parameter it names."""
    found = SET_CONFIG.search(statement)
    assert found is not None
    call = statement[found.end() :]
    third = call.split(",")[2].split(")")[0].strip().lower()
    if third == "true":
        return True
    bound = re.fullmatch(r"\$(\d+)(::\w+)?", third)
    if bound is None:
        return False
    return parameters[int(bound.group(1)) - 1] is True


@dataclass
class Live:
    client: httpx.AsyncClient
    headers: dict[str, str]
    recorder: Recorder
    engine: AsyncEngine
    backend: str


@pytest.fixture
async def live(database: Database, settings: Settings) -> AsyncIterator[Live]:
    """The app on its own engine and pool, committing for real, with a fresh tenant."""
    engine = create_engine(settings)
    maker = make_sessionmaker(engine)
    async with unit_of_work(maker) as session:
        tenant = await auth_service.create_tenant(session, f"uow-{uuid.uuid4().hex[:8]}", "UoW")
        _, token = await auth_service.create_key(
            session,
            tenant.id,
            name="admin",
            scopes=["admin"],
            expires_at=None,
            prefix=settings.api_key_prefix,
            actor=None,
        )
    recorder = Recorder()
    recorder.attach(engine)
    app = create_app(settings)
    app.state.engine = engine
    app.state.sessionmaker = maker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Live(client, {"Authorization": f"Bearer {token}"}, recorder, engine, database.backend)
    await engine.dispose()


@pytest.mark.anyio
async def test_each_request_commits_exactly_once(live: Live) -> None:
    client, h, rec = live.client, live.headers, live.recorder
    rec.take_commits()
    keyed = {**h, "Idempotency-Key": "uow-subject"}
    created = await client.post("/v1/subjects", json=subject(), headers=keyed)
    assert created.status_code == 201, created.text
    # The subject and its stored replayable response: one transaction, one COMMIT.
    assert rec.take_commits() == 1
    replay = await client.post("/v1/subjects", json=subject(), headers=keyed)
    assert replay.headers["idempotency-replayed"] == "true"
    assert replay.json() == created.json()
    assert rec.take_commits() == 1

    etag = created.headers["etag"]
    patched = await client.patch(
        "/v1/subjects/emp-1", json={"display_name": "Ada"}, headers={**h, "If-Match": etag}
    )
    assert patched.status_code == 200, patched.text
    assert rec.take_commits() == 1
    assessed = await client.post("/v1/assessments", json=assessment(), headers=h)
    assert assessed.status_code == 201, assessed.text
    assert rec.take_commits() == 1
    key = await client.post(
        "/v1/api-keys", json={"name": "reader", "scopes": ["subjects:read"]}, headers=h
    )
    assert key.status_code == 201, key.text
    assert rec.take_commits() == 1
    assert (await client.get("/v1/subjects/emp-1", headers=h)).status_code == 200
    assert rec.take_commits() == 1


@pytest.mark.anyio
async def test_a_refused_request_commits_nothing(live: Live) -> None:
    client, h, rec = live.client, live.headers, live.recorder
    assert (await client.post("/v1/subjects", json=subject("dup"), headers=h)).status_code == 201
    rec.take_commits()
    again = await client.post("/v1/subjects", json=subject("dup"), headers=h)
    assert again.status_code == 409, again.text
    stale = await client.patch(
        "/v1/subjects/dup", json={"display_name": "X"}, headers={**h, "If-Match": '"nope"'}
    )
    assert stale.status_code == 412, stale.text
    assert rec.take_commits() == 0
    assert (await client.get("/v1/subjects/dup", headers=h)).json()["display_name"] != "X"


@pytest.mark.anyio
async def test_every_set_config_the_app_sends_is_transaction_local(live: Live) -> None:
    if live.backend != "postgres":
        pytest.skip("the tenant setting (and row-level security) exist on Postgres")
    client, h, rec = live.client, live.headers, live.recorder
    keyed = {**h, "Idempotency-Key": "uow-local"}
    assert (await client.post("/v1/subjects", json=subject(), headers=keyed)).status_code == 201
    assert (await client.post("/v1/assessments", json=assessment(), headers=h)).status_code == 201
    for path in ("/v1/subjects/emp-1/score", "/v1/subjects/emp-1/score", "/v1/subjects"):
        assert (await client.get(path, headers=h)).status_code == 200
    assert (await client.get("/v1/frameworks", headers=h)).status_code == 200
    assert rec.set_configs, "the scenario sent no set_config at all"
    assert [s for s, p in rec.set_configs if not _is_local(s, p)] == []
    # And so nothing of the tenant is left on a pooled connection after its transaction.
    async with live.engine.connect() as conn:
        left = await conn.scalar(text("SELECT current_setting('app.tenant_id', true)"))
    assert left in (None, "")
