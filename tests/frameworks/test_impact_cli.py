"""`ladder impact` on a stored draft: the same numbers as `POST .../versions/{v}/impact`.

The CLI opens its own connection, so the tenant, people and versions here are committed (this
module's `sessionmaker` commits for real instead of inside the test's rolled-back transaction);
each test uses a fresh tenant, so nothing leaks into other tests.
"""

import asyncio
import csv
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cli import main
from app.config import get_settings
from app.db import make_sessionmaker
from tests.api.test_framework_evolution import AS_OF, BASE, PEOPLE, draft_v2, renamed_v2, setup_v1
from tests.conftest import Database, Tenant

pytestmark = pytest.mark.anyio


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that really commit, so that the CLI's own connection sees the data."""
    return make_sessionmaker(engine)


async def _ladder(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database: Database,
    *args: str,
) -> str:
    """Run `ladder` in a worker thread (it runs its own event loop) against the test database.

    Its output, or ``ladder exited: <message>`` when it exits: a SystemExit is not let through
    the test's event loop (it would tear the loop down instead of failing the test)."""
    monkeypatch.setenv("DATABASE_URL", database.app_url)
    monkeypatch.setenv("LOAD_BUILTIN_FRAMEWORKS", "false")
    get_settings.cache_clear()
    capsys.readouterr()

    def run() -> str | None:
        try:
            main(list(args))
        except SystemExit as exc:
            return f"ladder exited: {exc.code}"
        return None

    try:
        exited = await asyncio.to_thread(run)
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    return exited or out


async def test_ladder_impact_gives_the_api_s_numbers(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, renamed_v2())).status_code == 201
    common = ("impact", "eng-ladder", "2", "--tenant", tenant_a.slug, "--as-of", AS_OF)
    r = await client.post(
        f"{BASE}/versions/2/impact", json={"as_of": AS_OF}, headers=tenant_a.headers
    )
    assert r.status_code == 200, r.text
    api = r.json()
    assert api["next_cursor"] is None  # every mover on the one page, as the CLI prints them

    cli = json.loads(await _ladder(monkeypatch, capsys, database, *common, "--format", "json"))
    assert cli == api
    assert cli["summary"]["moved_down"] == 3  # the numbers are the real ones, not empty
    assert cli["summary"]["subjects"] == len(PEOPLE)

    r = await client.post(
        f"{BASE}/versions/2/impact",
        json={"as_of": AS_OF},
        params={"format": "csv"},
        headers=tenant_a.headers,
    )
    cli_csv = await _ladder(monkeypatch, capsys, database, *common, "--format", "csv")
    assert list(csv.reader(io.StringIO(cli_csv))) == list(csv.reader(io.StringIO(r.text)))

    text = await _ladder(monkeypatch, capsys, database, *common)
    assert "4 people, 0 move up, 3 move down, 1 unchanged" in text
    before, after = api["summary"]["level_counts_before"], api["summary"]["level_counts_after"]
    assert f"| mid | {before['mid']} | {after['mid']} |" in text
    assert "| ann | down | mid | junior |" in text


async def test_ladder_impact_filters_like_the_api(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, renamed_v2())).status_code == 201
    body: dict[str, Any] = {
        "as_of": AS_OF,
        "subject_refs": ["ann", "cid", "zed"],
        "filter": {"track": "ic", "current_level": "mid", "attributes": {"team": "growth"}},
        "top_competencies": 1,
    }
    r = await client.post(f"{BASE}/versions/2/impact", json=body, headers=tenant_a.headers)
    assert r.status_code == 200, r.text
    args = ["impact", "eng-ladder", "2", "--tenant", tenant_a.slug, "--as-of", AS_OF]
    args += ["--subject", "ann", "--subject", "cid", "--subject", "zed"]
    args += ["--track", "ic", "--level", "mid", "--attribute", "team=growth"]
    args += ["--top", "1", "--format", "json"]
    cli = json.loads(await _ladder(monkeypatch, capsys, database, *args))
    assert cli == r.json()
    assert cli["summary"]["subjects"] == 2 and cli["unknown_refs"] == ["zed"]
    assert len(cli["summary"]["top_competencies"]) == 1
    # A team nobody is in: nobody is compared, as the API says too.
    args[args.index("team=growth")] = "team=nobody"
    cli = json.loads(await _ladder(monkeypatch, capsys, database, *args))
    assert cli["summary"]["subjects"] == 0
    args[args.index("team=nobody")] = "team"
    out = await _ladder(monkeypatch, capsys, database, *args)
    assert out == "ladder exited: ladder impact: --attribute wants NAME=VALUE, not 'team'"


async def test_ladder_impact_of_an_unknown_version_or_tenant_says_so(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await setup_v1(client, tenant_a)
    args = ("impact", "eng-ladder", "7", "--tenant", tenant_a.slug)
    out = await _ladder(monkeypatch, capsys, database, *args)
    assert out.startswith("ladder exited: ladder impact:") and "7" in out
    args = ("impact", "eng-ladder", "1", "--tenant", "nobody-here")
    out = await _ladder(monkeypatch, capsys, database, *args)
    assert out == "ladder exited: ladder impact: no tenant 'nobody-here'"
