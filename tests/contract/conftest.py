"""What the contract tests share: the real service, as a client meets it."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Database
from tests.fault.appserver import AppServer, app_env, run_ladder


@dataclass
class Served:
    base_url: str
    token: str


@pytest.fixture
def served(database: Database, tmp_path: Path) -> Iterator[Served]:
    """`ladder serve` on the test database, and a committed tenant with an admin key."""
    env = app_env(database.app_url, LOAD_BUILTIN_FRAMEWORKS="false", WEBHOOKS_ENABLED="false")
    owner_env = {**env, "DATABASE_URL": database.owner_url}
    slug = f"contract-{uuid.uuid4().hex[:8]}"
    token = run_ladder(tmp_path, owner_env, "create-tenant", slug).strip().splitlines()[-1]
    server = AppServer(tmp_path, env, tmp_path / "server.log")
    try:
        server.start()
        yield Served(server.base_url, token)
    finally:
        server.stop()
