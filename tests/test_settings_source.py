"""Settings come from one place: what create_app(settings) was given, never the environment."""

import ast
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.main import create_app
from tests.conftest import _make_tenant

APP = Path(__file__).resolve().parent.parent / "app"

# Process entry points, not request code: they build the Settings that create_app receives.
ENTRY_POINTS = {"cli.py", "main.py", "server.py", "config.py", "calibration/commands.py"}


def _reads_settings_from_the_environment(node: ast.AST) -> bool:
    """``from app.config import get_settings``, ``config.get_settings``, or ``Settings(...)``."""
    if isinstance(node, ast.ImportFrom) and node.module == "app.config":
        return any(alias.name == "get_settings" for alias in node.names)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id == "config" and node.attr == "get_settings"
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Settings"


def test_request_code_never_reads_settings_from_the_environment() -> None:
    found = [
        f"{path.relative_to(APP)}:{getattr(node, 'lineno', '?')}"
        for path in sorted(APP.rglob("*.py"))
        if str(path.relative_to(APP)) not in ENTRY_POINTS
        for node in ast.walk(ast.parse(path.read_text()))
        if _reads_settings_from_the_environment(node)
    ]
    assert found == [], "use request.app.state.settings: " + ", ".join(found)


@pytest.mark.anyio
async def test_key_prefix_given_to_create_app_is_the_one_issued(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    custom = settings.model_copy(update={"api_key_prefix": "acme"})
    assert custom.api_key_prefix != Settings().api_key_prefix
    tenant = await _make_tenant(sessionmaker, custom, f"s-{uuid.uuid4().hex[:8]}")
    app = create_app(custom)
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post(
            "/v1/api-keys", json={"name": "ci", "scopes": ["subjects:read"]}, headers=tenant.headers
        )
        assert r.status_code == 201, r.text
        assert r.json()["key"].startswith("acme_")
        issued = {"Authorization": f"Bearer {r.json()['key']}"}
        assert (await client.get("/v1/subjects", headers=issued)).status_code == 200
