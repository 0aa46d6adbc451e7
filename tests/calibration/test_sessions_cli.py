"""`ladder calibration ...` against a committed tenant: the same CSV as the API, and proposals
imported from an edited grid (on Postgres and SQLite)."""

import csv
import io
from pathlib import Path

import httpx
import pytest

from tests.api.test_calibration import FRAMEWORK, seed
from tests.api.test_scores import AS_OF
from tests.calibration.test_sessions import BASE, SCOPE, open_session, proposal
from tests.conftest import Database, Tenant
from tests.frameworks.test_impact_cli import (
    _ladder,
    sessionmaker,  # noqa: F401 - commits for real
)

pytestmark = pytest.mark.anyio


async def test_ladder_calibration_gives_the_api_s_csv(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    session_id = (await open_session(client, tenant_a))["id"]
    assert (
        await client.post(f"{BASE}/{session_id}/proposals", json=proposal(), headers=h)
    ).status_code == 201
    tenant = ("--tenant", tenant_a.slug)

    async def ladder(*args: str) -> str:
        return await _ladder(monkeypatch, capsys, database, "calibration", *args)

    grid = await client.get(f"{BASE}/{session_id}/grid", params={"format": "csv"}, headers=h)
    assert await ladder("export-grid", session_id, *tenant) == grid.text
    assert "Shipped the billing migration alone" in grid.text

    body = {"framework": FRAMEWORK, "as_of": AS_OF, "filter": SCOPE}
    api = await client.post(
        "/v1/calibration/rater-effects", params={"format": "csv"}, json=body, headers=h
    )
    cli = await ladder(
        "rater-effects",
        "product-management",
        *tenant,
        "--as-of",
        AS_OF,
        "--attribute",
        "team=growth",
    )
    assert cli == api.text
    assert any(row["rater_ref"] == "m1" for row in csv.DictReader(io.StringIO(cli)))
    stored = await client.get(
        f"{BASE}/{session_id}/rater-effects", params={"format": "csv"}, headers=h
    )
    assert await ladder("rater-effects", "--session", session_id, *tenant) == stored.text

    rows = list(csv.DictReader(io.StringIO(grid.text)))
    for row in rows:
        if (row["subject_ref"], row["competency"]) == ("pm-3", "execution"):
            row["proposed_value"], row["reason"] = "2", "Two missed launches"
    edited = tmp_path / "grid.csv"
    with edited.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = await ladder("import-proposals", session_id, str(edited), *tenant, "--proposer", "Panel")
    assert out.strip() == (
        "2 proposal(s) recorded from 98 row(s); 96 row(s) without a proposed value"
    )
    listed = (await client.get(f"{BASE}/{session_id}/proposals", headers=h)).json()["items"]
    by_ref = {p["subject_ref"]: p for p in listed}
    assert (by_ref["pm-3"]["value"], by_ref["pm-3"]["proposer"]) == (2, "Panel")
    assert by_ref["pm-1"]["proposer"] != "Panel"  # its row names its proposer, unchanged

    bad = tmp_path / "bad.csv"
    bad.write_text("subject_ref,competency,proposed_value,reason\npm-3,execution,9,too high\n")
    out = await ladder("import-proposals", session_id, str(bad), *tenant)
    assert out.startswith("ladder exited: ladder calibration: ")
    assert "body.row.2.value: 9 is not on the scale" in out
    listed = (await client.get(f"{BASE}/{session_id}/proposals", headers=h)).json()["items"]
    assert {p["subject_ref"]: p["value"] for p in listed}["pm-3"] == 2  # unchanged

    out = await ladder("export-grid", session_id, "--tenant", "no-such-tenant")
    assert out == "ladder exited: ladder calibration: no tenant 'no-such-tenant'"
    out = await ladder("export-grid", "not-a-uuid", *tenant)
    assert out == "ladder exited: ladder calibration: 'not-a-uuid' is not a session id"
