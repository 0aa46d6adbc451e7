"""The schema is made only by migrations, both ways, and matches the models."""

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.config import PROJECT_ROOT, Settings
from app.db import create_engine
from tests.conftest import make_postgres_database

pytestmark = pytest.mark.postgres


def _config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["configure_logging"] = False
    return cfg


def _diff(url: str) -> list[object]:
    def compare(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))

    async def go() -> list[object]:
        engine = create_engine(Settings(), url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _tables(url: str) -> set[str]:
    async def go() -> set[str]:
        engine = create_engine(Settings(), url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
                return {r[0] for r in rows}
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_upgrade_downgrade_upgrade_on_postgres_without_drift() -> None:
    _, url, drop = make_postgres_database()
    try:
        cfg = _config(url)
        command.upgrade(cfg, "head")
        assert _diff(url) == []
        command.downgrade(cfg, "base")
        assert _tables(url) == {"alembic_version"}
        command.upgrade(cfg, "head")
        assert _diff(url) == []
        assert {"subject", "assessment", "rating", "framework_version"} <= _tables(url)
    finally:
        drop()


def test_sqlite_migrations_match_models(tmp_path: object) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    cfg = _config(url)
    command.upgrade(cfg, "head")
    assert _diff(url) == []
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    assert _diff(url) == []
