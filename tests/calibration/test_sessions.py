"""Calibration sessions on Postgres and SQLite: snapshot, proposals, close, tenancy, erasure
and the CSV grid (the concurrent close is in test_sessions_race.py)."""

import csv
import io
import uuid
from typing import Any

import httpx
import pytest

from app.cohorts import service as cohorts
from tests.api.test_calibration import FRAMEWORK, PEOPLE, seed
from tests.api.test_scores import AS_OF
from tests.api.test_subjects_assessments import subject
from tests.api.test_webhooks import allow_private  # noqa: F401 - a fixture
from tests.conftest import Tenant
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

BASE = "/v1/calibration/sessions"
SCOPE = {"attributes": {"team": "growth"}}


async def open_session(client: httpx.AsyncClient, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    body = {"name": "Q4 calibration", "framework": FRAMEWORK, "as_of": AS_OF, "filter": SCOPE}
    r = await client.post(BASE, json={**body, **extra}, headers=tenant.headers)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{BASE}/{r.json()['id']}"
    answer: dict[str, Any] = r.json()
    return answer


def proposal(ref: str = "pm-1", competency: str = "execution", **extra: Any) -> dict[str, Any]:
    return {
        "subject_ref": ref,
        "competency": competency,
        "value": 4,
        "reason": "Shipped the billing migration alone",
        **extra,
    }


async def propose(
    client: httpx.AsyncClient, tenant: Tenant, session_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"{BASE}/{session_id}/proposals", json=body, headers=tenant.headers)


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = r.json()
    return problem


async def _standing(client: httpx.AsyncClient, tenant: Tenant, session_id: str) -> list[Any]:
    r = await client.get(f"{BASE}/{session_id}/proposals", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return [p for p in r.json()["items"] if p["status"] == "standing"]


async def test_opening_a_session_reads_the_cohort_once(
    client: httpx.AsyncClient, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot's scores and its rater effects come from one load of the cohort's ratings
    (it was loaded twice, once for each)."""
    await seed(client, tenant_a)
    load = cohorts.load
    calls: list[Any] = []

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await load(*args, **kwargs)

    monkeypatch.setattr(cohorts, "load", counted)
    created = await open_session(client, tenant_a)
    assert len(calls) == 1
    assert created["people"] == len(PEOPLE) + 1
    raters = {x["rater_ref"]: x for x in created["rater_effects"]["raters"]}
    assert raters["m1"]["effect"] == pytest.approx(2 / 3, abs=1e-9)


async def test_snapshot_holds_scores_and_rater_effects(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    created = await open_session(client, tenant_a)
    assert created["status"] == "open" and created["people"] == len(PEOPLE) + 1
    assert created["framework"]["key"] == "product-management"
    assert created["scope"] == {"track": None, "current_level": None, **SCOPE}
    members = {m["subject_ref"]: m for m in created["members"]}
    assert set(members) == {*PEOPLE, "solo-person"}  # other-team is outside the filter
    # The snapshot's numbers are the cohort evaluation's at the same moment.
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": FRAMEWORK, "as_of": AS_OF, "filter": SCOPE},
        headers=tenant_a.headers,
    )
    assert r.status_code == 200, r.text
    for person in r.json()["people"]:
        member = members[person["subject_ref"]]
        assert member["level_index"] == pytest.approx(person["level_index"], abs=1e-6)
        assert member["attained_level"] == (
            person["attained_level"]["key"] if person["attained_level"] else None
        )
    pm0 = members["pm-0"]
    assert len(pm0["values"]) == len(created["competencies"]) == 14
    assert pm0["next_level"] in pm0["readiness"]
    assert len(pm0["fair_values"]) == 14
    # Rater effects as the rater-effects route gives them, m1 the lenient one; the
    # per-manager distribution is each rater's count per scale value beside the cohort's.
    raters = {x["rater_ref"]: x for x in created["rater_effects"]["raters"]}
    assert raters["m1"]["effect"] == pytest.approx(2 / 3, abs=1e-9)
    assert [f["kind"] for f in raters["m1"]["flags"]] == ["lenient"]
    assert sum(raters["m1"]["distribution"]) == 56
    effects = created["rater_effects"]
    assert len(effects["cohort_distribution"]) == len(effects["scale"]) == 6
    assert effects["fair_averages"] is None and effects["self_ratings"]["people"] == []
    # The session reads back the same, and lists.
    again = (await client.get(f"{BASE}/{created['id']}", headers=tenant_a.headers)).json()
    assert again == created
    listed = (await client.get(BASE, headers=tenant_a.headers)).json()
    assert [s["id"] for s in listed["items"]] == [created["id"]]
    assert listed["items"][0]["people"] == 7 and listed["items"][0]["proposals"] == 0


async def test_propose_then_close_writes_calibrated_ratings(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    session_id = (await open_session(client, tenant_a))["id"]
    r = await propose(client, tenant_a, session_id, proposal(proposer="Grace (VP Product)"))
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["status"] == "standing" and made["proposer"] == "Grace (VP Product)"
    assert made["current_value"] is not None
    # The same proposal again is the same proposal: 200, one standing.
    r = await propose(client, tenant_a, session_id, proposal(proposer="Grace (VP Product)"))
    assert r.status_code == 200 and r.json()["created_at"] == made["created_at"]
    # A second person's, proposed and then replaced: the latest stands.
    assert (
        await propose(client, tenant_a, session_id, proposal("pm-2", value=1))
    ).status_code == 201
    r = await propose(client, tenant_a, session_id, proposal("pm-2", value=2, reason="Re-read"))
    assert r.status_code == 200 and r.json()["value"] == 2
    assert uuid.UUID(r.json()["proposer"])  # none given: the API key's id
    assert len(await _standing(client, tenant_a, session_id)) == 2

    r = await client.post(f"{BASE}/{session_id}/close", headers=h)
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["status"] == "closed" and closed["calibrated_ratings"] == 2
    assert closed["closed_at"] is not None
    # The calibrated value is the person's value now.
    score = (await client.get("/v1/subjects/pm-1/score", headers=h)).json()
    execution = next(c for c in score["competencies"] if c["key"] == "execution")
    assert execution["value"] == 4 and execution["calibrated"] is True
    listed = await client.get(
        "/v1/assessments", params={"subject_ref": "pm-1", "rater_role": "calibrated"}, headers=h
    )
    [assessment] = listed.json()["items"]
    assert assessment["rater_ref"] == f"calibration-session:{session_id}"
    assert assessment["ratings"] == [
        {
            "competency": "execution",
            "proficiency": 4,
            "evidence": "Shipped the billing migration alone",
            "confidence": None,
        }
    ]
    pm2 = (await client.get("/v1/subjects/pm-2/score", headers=h)).json()
    assert next(c for c in pm2["competencies"] if c["key"] == "execution")["value"] == 2
    audit = (await client.get("/v1/audit-events", params={"limit": 200}, headers=h)).json()
    actions = [e["action"] for e in audit["items"]]
    assert "calibration_session.closed" in actions
    assert actions.count("calibration_proposal.recorded") == 4

    # A closed session never changes.
    _problem(await client.post(f"{BASE}/{session_id}/close", headers=h), 409)
    _problem(await propose(client, tenant_a, session_id, proposal("pm-3")), 409)
    url = f"{BASE}/{session_id}/proposals/pm-1/execution"
    _problem(await client.delete(url, headers=h), 409)
    csv_body = "subject_ref,competency,proposed_value,reason\npm-3,execution,2,late\n"
    r = await client.post(
        f"{BASE}/{session_id}/proposals",
        content=csv_body,
        headers={**h, "Content-Type": "text/csv"},
    )
    _problem(r, 409)
    assert len(await _standing(client, tenant_a, session_id)) == 2
    again = await client.get("/v1/assessments", params={"rater_role": "calibrated"}, headers=h)
    assert len(again.json()["items"]) == 2


@pytest.mark.usefixtures("allow_private")
async def test_close_sends_calibration_closed(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    r = await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/ladder", "events": ["calibration.closed"]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    session_id = (await open_session(client, tenant_a))["id"]
    assert (await propose(client, tenant_a, session_id, proposal())).status_code == 201
    assert (await client.post(f"{BASE}/{session_id}/close", headers=h)).status_code == 200
    [delivery] = (await client.get(f"/v1/webhooks/{hook}/deliveries", headers=h)).json()["items"]
    assert delivery["event"] == "calibration.closed"
    data = delivery["payload"]["data"]
    assert data["session_id"] == session_id
    assert (data["assessments"], data["ratings"]) == (1, 1)
    assert "pm-1" not in str(delivery["payload"])


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        ({"subject_ref": "other-team"}, ["body", "subject_ref"], "not_in_session"),
        ({"subject_ref": "nobody"}, ["body", "subject_ref"], "not_in_session"),
        ({"competency": "juggling"}, ["body", "competency"], "unknown_reference"),
        ({"value": 9}, ["body", "value"], "out_of_scale"),
        ({"value": "4"}, ["body", "value"], "json_number"),
        ({"reason": "   "}, ["body", "reason"], "string_pattern_mismatch"),
        ({"reason": None}, ["body", "reason"], "string_type"),
        ({"surprise": 1}, ["body", "surprise"], "extra_forbidden"),
    ],
)
async def test_bad_proposals_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    change: dict[str, Any],
    loc: list[Any],
    kind: str,
) -> None:
    await seed(client, tenant_a)
    session_id = (await open_session(client, tenant_a))["id"]
    problem = _problem(await propose(client, tenant_a, session_id, proposal(**change)), 422)
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(loc, kind)]
    assert await _standing(client, tenant_a, session_id) == []
    r = await client.post(
        f"{BASE}/{session_id}/proposals",
        content=b"{not json",
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    _problem(r, 422)
    r = await client.post(
        f"{BASE}/{session_id}/proposals",
        content=b"subject_ref",
        headers={**tenant_a.headers, "Content-Type": "text/plain"},
    )
    _problem(r, 415)


async def test_withdrawn_proposals_stay_on_record_and_are_not_written(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    session_id = (await open_session(client, tenant_a))["id"]
    for ref in ("pm-1", "pm-2"):
        assert (await propose(client, tenant_a, session_id, proposal(ref))).status_code == 201
    url = f"{BASE}/{session_id}/proposals/pm-2/execution"
    assert (await client.delete(url, headers=h)).status_code == 204
    _problem(await client.delete(url, headers=h), 404)
    _problem(await client.delete(f"{BASE}/{session_id}/proposals/ghost/execution", headers=h), 404)
    r = await client.get(f"{BASE}/{session_id}/proposals", params={"limit": 1}, headers=h)
    page = r.json()
    assert [p["subject_ref"] for p in page["items"]] == ["pm-1"]
    r = await client.get(
        f"{BASE}/{session_id}/proposals", params={"cursor": page["next_cursor"]}, headers=h
    )
    [withdrawn] = r.json()["items"]
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawn_at"] is not None
    assert (await client.post(f"{BASE}/{session_id}/close", headers=h)).json()[
        "calibrated_ratings"
    ] == 1
    listed = await client.get(
        "/v1/assessments", params={"subject_ref": "pm-2", "rater_role": "calibrated"}, headers=h
    )
    assert listed.json()["items"] == []


async def test_another_tenant_sees_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await seed(client, tenant_a)
    session_id = (await open_session(client, tenant_a))["id"]
    assert (await propose(client, tenant_a, session_id, proposal())).status_code == 201
    hb = tenant_b.headers
    for method, path in (
        ("GET", ""),
        ("GET", "/grid"),
        ("GET", "/rater-effects"),
        ("GET", "/proposals"),
        ("POST", "/close"),
        ("DELETE", "/proposals/pm-1/execution"),
    ):
        _problem(await client.request(method, f"{BASE}/{session_id}{path}", headers=hb), 404)
    _problem(await propose(client, tenant_b, session_id, proposal()), 404)
    assert (await client.get(BASE, headers=hb)).json()["items"] == []
    # Scopes: reading needs analytics:read, writing assessments:write.
    reader = {"Authorization": f"Bearer {await tenant_a.key('analytics:read')}"}
    assert (await client.get(f"{BASE}/{session_id}", headers=reader)).status_code == 200
    _problem(await client.post(f"{BASE}/{session_id}/close", headers=reader), 403)
    # Still open and unchanged for its own tenant.
    mine = (await client.get(f"{BASE}/{session_id}", headers=tenant_a.headers)).json()
    assert mine["status"] == "open" and mine["proposals"] == 1


async def test_erasing_a_person_removes_them_from_every_session(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    # m1 rates people and is a person too; erased, the stored rater table no longer names them.
    assert (await client.post("/v1/subjects", json=subject("m1"), headers=h)).status_code == 201
    first = (await open_session(client, tenant_a))["id"]
    second = (await open_session(client, tenant_a, subject_refs=["pm-1", "pm-2"], filter=None))[
        "id"
    ]
    for session_id in (first, second):
        assert (await propose(client, tenant_a, session_id, proposal("pm-1"))).status_code == 201
        assert (await propose(client, tenant_a, session_id, proposal("pm-2"))).status_code == 201
    assert (await client.post(f"{BASE}/{second}/close", headers=h)).status_code == 200

    assert (await client.delete("/v1/subjects/pm-1", headers=h)).status_code == 204
    assert (await client.delete("/v1/subjects/m1", headers=h)).status_code == 204
    for session_id in (first, second):
        r = await client.get(f"{BASE}/{session_id}", headers=h)
        assert r.status_code == 200
        assert '"pm-1"' not in r.text and '"m1"' not in r.text
        assert "pm-2" in r.text
        assert [p["subject_ref"] for p in await _standing(client, tenant_a, session_id)] == ["pm-2"]
        grid = (await client.get(f"{BASE}/{session_id}/grid", headers=h)).text
        assert "pm-1" not in grid
        effects = (await client.get(f"{BASE}/{session_id}/rater-effects", headers=h)).json()
        assert "[erased]" in {x["rater_ref"] for x in effects["raters"]}
    assert (await client.get(f"{BASE}/{first}", headers=h)).json()["people"] == len(PEOPLE)
    # The open session goes on without them.
    _problem(await propose(client, tenant_a, first, proposal("pm-1")), 422)
    assert (await client.post(f"{BASE}/{first}/close", headers=h)).json()["calibrated_ratings"] == 1


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _as_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def test_grid_csv_round_trip(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    session_id = (await open_session(client, tenant_a))["id"]
    assert (await propose(client, tenant_a, session_id, proposal("pm-0"))).status_code == 201
    r = await client.get(f"{BASE}/{session_id}/grid", params={"format": "csv"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = _rows(r.text)
    assert len(rows) == 7 * 14
    assert list(rows[0]) == [
        "subject_ref",
        "competency",
        "current_value",
        "fair_value",
        "proposed_value",
        "reason",
        "proposer",
    ]
    pm0 = next(x for x in rows if (x["subject_ref"], x["competency"]) == ("pm-0", "execution"))
    assert (pm0["proposed_value"], pm0["reason"]) == ("4", "Shipped the billing migration alone")
    # Edited in a spreadsheet: two more proposals, one with a formula-like reason.
    for row in rows:
        if (row["subject_ref"], row["competency"]) == ("pm-3", "prioritization"):
            row["proposed_value"], row["reason"] = "3", "=consistent with peers"
        if (row["subject_ref"], row["competency"]) == ("pm-4", "execution"):
            row["proposed_value"], row["reason"] = "2.0", "Missed two launches"
    edited = _as_csv(rows)
    for _ in range(2):  # importing the same file twice changes nothing more
        r = await client.post(
            f"{BASE}/{session_id}/proposals",
            content=edited,
            headers={**h, "Content-Type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"rows": 98, "proposed": 3, "unchanged": 95}
        assert len(await _standing(client, tenant_a, session_id)) == 3
    grid = (await client.get(f"{BASE}/{session_id}/grid", headers=h)).json()["rows"]
    by_cell = {(x["subject_ref"], x["competency"]): x for x in grid}
    assert by_cell[("pm-4", "execution")]["proposed_value"] == 2
    assert by_cell[("pm-3", "prioritization")]["reason"] == "=consistent with peers"
    # Exported again, the formula-like reason is defused, and reads back as it was.
    text = (await client.get(f"{BASE}/{session_id}/grid", params={"format": "csv"}, headers=h)).text
    assert "'=consistent with peers" in text
    r = await client.post(
        f"{BASE}/{session_id}/proposals", content=text, headers={**h, "Content-Type": "text/csv"}
    )
    assert r.json()["proposed"] == 3
    reasons = {p["reason"] for p in await _standing(client, tenant_a, session_id)}
    assert "=consistent with peers" in reasons


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            "subject_ref,competency,proposed_value,reason\n"
            "pm-1,execution,4,fine\n"
            "pm-2,execution,9,off the scale\n"
            "pm-3,juggling,2,no such competency\n"
            "other-team,execution,2,outside the session\n",
            [
                ["body", "row", 3, "value"],
                ["body", "row", 4, "competency"],
                ["body", "row", 5, "subject_ref"],
            ],
        ),
        (
            "subject_ref,competency,proposed_value,reason\n"
            "pm-1,execution,4,\npm-2,execution,x,y\npm-3,execution,2.5,z\n",
            [
                ["body", "row", 2, "reason"],
                ["body", "row", 3, "proposed_value"],
                ["body", "row", 4, "proposed_value"],
            ],
        ),
        (
            "subject_ref,competency,proposed_value,reason\npm-1,execution,4,a\npm-1,execution,3,b\n",
            [["body", "row", 3, "competency"]],
        ),
        ("subject_ref,competency,value\npm-1,execution,4\n", [["body", "header"]]),
        (
            "subject_ref,competency,proposed_value,reason\npm-1,execution,4,a,b\n",
            [["body", "row", 2]],
        ),
    ],
)
async def test_bad_csv_rows_are_named_and_nothing_is_stored(
    client: httpx.AsyncClient, tenant_a: Tenant, body: str, loc: list[list[Any]]
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    session_id = (await open_session(client, tenant_a))["id"]
    r = await client.post(
        f"{BASE}/{session_id}/proposals", content=body, headers={**h, "Content-Type": "text/csv"}
    )
    problem = _problem(r, 422)
    assert [e["loc"] for e in problem["errors"]] == loc
    assert await _standing(client, tenant_a, session_id) == []
    r = await client.post(
        f"{BASE}/{session_id}/proposals",
        content=b"\xff\xfe",
        headers={**h, "Content-Type": "text/csv"},
    )
    _problem(r, 422)


async def test_rater_effects_table_as_csv(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    session_id = (await open_session(client, tenant_a))["id"]
    r = await client.get(
        f"{BASE}/{session_id}/rater-effects", params={"format": "csv"}, headers=tenant_a.headers
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    m1 = next(x for x in _rows(r.text) if x["rater_ref"] == "m1")
    assert float(m1["effect"]) == pytest.approx(2 / 3) and m1["flags"] == "lenient"


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"framework": {"key": "no-such-ladder"}}, 404),
        ({"subject_refs": ["pm-1", "ghost"], "filter": None}, 422),
        ({"filter": {"attributes": {"team": "nobody"}}}, 422),
        ({"filter": {"track": "wizards"}}, 422),
        ({"name": ""}, 422),
        ({"window_days": 0}, 422),
        ({"surprise": True}, 422),
    ],
)
async def test_bad_sessions_are_refused(
    client: httpx.AsyncClient, tenant_a: Tenant, extra: dict[str, Any], status: int
) -> None:
    await seed(client, tenant_a)
    body = {"name": "Q4", "framework": FRAMEWORK, "as_of": AS_OF, "filter": SCOPE, **extra}
    _problem(await client.post(BASE, json=body, headers=tenant_a.headers), status)
    assert (await client.get(BASE, headers=tenant_a.headers)).json()["items"] == []


async def test_sessions_list_in_pages(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    made = [(await open_session(client, tenant_a, name=f"S{i}"))["id"] for i in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(BASE, params=params, headers=tenant_a.headers)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]


async def test_a_retried_open_with_its_idempotency_key_opens_one_session(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    body = {"name": "Q4", "framework": FRAMEWORK, "as_of": AS_OF, "filter": SCOPE}
    headers = {**tenant_a.headers, "Idempotency-Key": "open-q4-calibration"}
    first = await client.post(BASE, json=body, headers=headers)
    again = await client.post(BASE, json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    listed = (await client.get(BASE, headers=tenant_a.headers)).json()["items"]
    assert [s["id"] for s in listed] == [first.json()["id"]]
    other = await client.post(BASE, json={**body, "name": "Q1"}, headers=headers)
    assert other.status_code == 422, other.text  # the key was used for another request


async def test_unknown_refs_are_named(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    body = {"name": "Q4", "framework": FRAMEWORK, "subject_refs": ["pm-1", "ghost", "pm-2"]}
    problem = _problem(await client.post(BASE, json=body, headers=tenant_a.headers), 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "subject_refs", 1]]


async def test_a_draft_version_is_refused(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    assert (
        await client.post("/v1/frameworks", json=small_framework(), headers=h)
    ).status_code == 201
    body = {"name": "Q4", "framework": {"key": "eng-ladder", "version": 1}}
    problem = _problem(await client.post(BASE, json=body, headers=h), 422)
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
        (["body", "framework", "version"], "draft")
    ]
