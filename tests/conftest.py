"""Test harness: one fresh database per run and backend, built by the real migrations.

API tests run twice, on Postgres and on SQLite. On Postgres the app connects as a role that is
neither superuser nor owner-exempt from row-level security, so every API test also exercises
RLS. Each test runs inside a transaction that is rolled back at the end.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import service as auth_service
from app.cli import migrate
from app.config import Settings
from app.db import create_engine
from app.frameworks.service import ensure_builtin
from app.main import create_app

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ladder_test"
APP_ROLE = "ladder_app_test"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


async def _admin_execute(statements: list[str], database: str | None = None) -> None:
    # Server-level statements go through the maintenance database, which always exists.
    url = make_url(admin_url()).set(database=database or "postgres")
    engine = create_engine(Settings(), url.render_as_string(hide_password=False))
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for stmt in statements:
                await conn.execute(text(stmt))
    finally:
        await engine.dispose()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@dataclass
class Database:
    backend: str
    owner_url: str  # migrations, fixtures and catalog checks
    app_url: str  # what the service connects with


def make_postgres_database() -> tuple[str, str, Callable[[], None]]:
    """A fresh, empty Postgres database on the test server; returns (name, url, drop)."""
    name = f"{make_url(admin_url()).database or 'ladder_test'}_{uuid.uuid4().hex[:10]}"
    run(_admin_execute([f'CREATE DATABASE "{name}"']))
    url = make_url(admin_url()).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        run(_admin_execute([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))

    return name, url, drop


def _ensure_app_role(database: str) -> None:
    run(
        _admin_execute(
            [
                f"""DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
              END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$""",
            ]
        )
    )
    run(
        _admin_execute(
            [
                f'GRANT CONNECT ON DATABASE "{database}" TO {APP_ROLE}',
                f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
            ],
            database=database,
        )
    )


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A migrated database with the built-in ladder loaded, per backend, for the whole run."""
    if request.param == "postgres":
        name, owner_url, drop = make_postgres_database()
        migrate(Settings(database_url=owner_url))
        _ensure_app_role(name)
        app_url = (
            make_url(owner_url)
            .set(username=APP_ROLE, password=None)
            .render_as_string(hide_password=False)
        )
        db = Database("postgres", owner_url, app_url)
    else:
        path = tmp_path_factory.mktemp("sqlite") / "ladder.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate(Settings(database_url=url))
        db = Database("sqlite", url, url)
        drop = None
    run(_load_builtin(db.owner_url))
    yield db
    if drop is not None:
        drop()


async def _load_builtin(url: str) -> None:
    engine = create_engine(Settings(), url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            await ensure_builtin(session)
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def settings(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        database_url=database.app_url,
        load_builtin_frameworks=False,
        dev_api_key_file=tmp_path_factory.mktemp("keys") / "dev-api-key",
    )


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings)
    yield eng
    await eng.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The test's one connection; everything in the test is rolled back at the end."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        if outer.is_active:
            await outer.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # The app's commits become savepoint releases inside the test's transaction.
    return async_sessionmaker(
        bind=connection,
        class_=AsyncSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
def app(
    settings: Settings, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> Any:
    application = create_app(settings)
    application.state.engine = engine
    application.state.sessionmaker = sessionmaker
    return application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@dataclass
class Tenant:
    id: uuid.UUID
    slug: str
    admin_key: str
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    async def key(self, *scopes: str, expires_at: Any = None) -> str:
        async with self.sessionmaker() as session:
            _, token = await auth_service.create_key(
                session,
                self.id,
                name="test key",
                scopes=list(scopes),
                expires_at=expires_at,
                prefix=self.settings.api_key_prefix,
                actor=None,
            )
            await session.commit()
        return token


async def _make_tenant(
    sm: async_sessionmaker[AsyncSession], settings: Settings, slug: str
) -> Tenant:
    async with sm() as session:
        tenant, token = await auth_service.bootstrap_tenant(
            session, slug, name=slug.title(), prefix=settings.api_key_prefix, key_name="admin"
        )
        await session.commit()
        return Tenant(tenant.id, slug, token, sm, settings)


@pytest.fixture
async def tenant_a(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> Tenant:
    return await _make_tenant(sessionmaker, settings, f"a-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def tenant_b(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> Tenant:
    return await _make_tenant(sessionmaker, settings, f"b-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def ladder_path() -> Path:
    return (
        Path(__file__).resolve().parent.parent
        / "app"
        / "frameworks"
        / "builtin"
        / "product-management.yaml"
    )
