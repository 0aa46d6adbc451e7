"""Learning records over HTTP: xAPI statements in (as an LRS client sends them), plans out."""

import base64
import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import select

from app.db import bind_tenant
from app.models import LearningRecordAgent, XapiStatement, XapiUnmapped
from app.xapi.statements import mbox_sha1
from tests.api.test_scores import AS_OF, seed_pm
from tests.api.test_subjects_assessments import subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

LMS = "https://lms.example.com"
ADL = "http://adlnet.gov/expapi/verbs/"
PROBLEM = "application/problem+json"
UNKNOWN_IRI = "https://lms.example.com/courses/not-in-any-framework"


def basic(key: str, version: str = "1.0.3") -> dict[str, str]:
    """What an LRS client sends: HTTP Basic (the API key as password) and the xAPI version."""
    token = base64.b64encode(f"lrs-forwarder:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}", "X-Experience-API-Version": version}


def statement(
    verb: str, iri: str, ref: str = "emp-1", statement_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "actor": {"objectType": "Agent", "name": "Ada", "account": {"homePage": LMS, "name": ref}},
        "verb": {"id": ADL + verb, "display": {"en-US": verb}},
        "object": {"objectType": "Activity", "id": iri},
        "timestamp": "2026-10-20T09:30:00Z",
        **extra,
    }
    if statement_id is not None:
        body["id"] = statement_id
    return body


def voiding(target: str) -> dict[str, Any]:
    return {
        "actor": {"mbox": "mailto:lms-admin@example.com"},
        "verb": {"id": ADL + "voided", "display": {"en-US": "voided"}},
        "object": {"objectType": "StatementRef", "id": target},
    }


async def plan(client: httpx.AsyncClient, tenant: Tenant, ref: str = "emp-1") -> dict[str, Any]:
    r = await client.get(
        f"/v1/subjects/{ref}/recommendations",
        params={"as_of": AS_OF, "max_steps": 20, "budget_hours": 5000},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def completed(client: httpx.AsyncClient, tenant: Tenant, ref: str = "emp-1") -> list[str]:
    r = await client.get(f"/v1/subjects/{ref}/completed-activities", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return [item["activity"] for item in r.json()["items"]]


async def setup(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    """A rated PM, the LMS's account homePage registered, and an LRS client's headers."""
    await seed_pm(client, tenant)
    r = await client.put(
        "/v1/learning-records/settings", json={"account_home_pages": [LMS]}, headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    return basic(await tenant.key("learning-records:write", "learning-records:read"))


async def recommended_with_iri(client: httpx.AsyncClient, tenant: Tenant) -> tuple[str, str]:
    steps = (await plan(client, tenant))["steps"]
    with_iri = [(st["activity"], st["iri"]) for st in steps if st["iri"]]
    assert with_iri, "the plan recommends a course or certification with an IRI"
    return with_iri[0]


async def test_a_completed_statement_moves_the_plan(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    activity, iri = await recommended_with_iri(client, tenant_a)
    sid = str(uuid.uuid4())
    r = await client.post(
        "/xapi/statements", json=statement("completed", iri, statement_id=sid), headers=lrs
    )
    assert r.status_code == 200, r.text
    assert r.json() == [sid]
    assert r.headers["X-Experience-API-Version"] == "1.0.3"
    assert await completed(client, tenant_a) == [activity]
    after = await plan(client, tenant_a)
    assert activity not in [st["activity"] for st in after["steps"]]
    assert after["excluded_activities"] == [activity]
    # The statement reads back by id, as the LRS keeps it.
    r = await client.get("/xapi/statements", params={"statementId": sid}, headers=lrs)
    assert r.status_code == 200, r.text
    kept = r.json()
    assert kept["id"] == sid
    assert kept["verb"]["id"] == ADL + "completed"
    assert kept["object"]["id"] == iri
    assert kept["stored"].endswith("Z")
    assert kept["authority"]["account"]["homePage"]


async def test_a_list_answers_ids_in_order_and_passed_and_mastered_count(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    base = "https://competency-ladder.dev/xapi/activities/product-management/"
    batch = [
        statement("passed", base + "certified_product_manager"),
        statement("mastered", base + "system_design_course"),
        statement("failed", base + "product_analytics_course"),
        statement("experienced", base + "people_management_course"),
    ]
    r = await client.post("/xapi/statements", json=batch, headers=lrs)
    assert r.status_code == 200, r.text
    ids = r.json()
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(str(uuid.UUID(i)) == i for i in ids)
    # failed and experienced record nothing.
    assert sorted(await completed(client, tenant_a)) == [
        "certified_product_manager",
        "system_design_course",
    ]


async def test_put_replay_is_a_no_op_and_other_content_is_409(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    activity, iri = await recommended_with_iri(client, tenant_a)
    sid = str(uuid.uuid4())
    body = statement("completed", iri)
    for _ in range(2):
        r = await client.put(
            "/xapi/statements", params={"statementId": sid}, json=body, headers=lrs
        )
        assert r.status_code == 204, r.text
    assert await completed(client, tenant_a) == [activity]
    changed = statement("completed", iri, timestamp="2026-10-21T09:30:00Z")
    r = await client.put("/xapi/statements", params={"statementId": sid}, json=changed, headers=lrs)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == PROBLEM
    # A list with one conflicting statement keeps nothing of the list.
    other = str(uuid.uuid4())
    r = await client.post(
        "/xapi/statements",
        json=[
            statement("completed", UNKNOWN_IRI, statement_id=other),
            {**changed, "id": sid},
        ],
        headers=lrs,
    )
    assert r.status_code == 409, r.text
    r = await client.get("/xapi/statements", params={"statementId": other}, headers=lrs)
    assert r.status_code == 404
    # The same list again without the conflict: the replayed statement is a no-op.
    r = await client.post(
        "/xapi/statements",
        json=[statement("completed", UNKNOWN_IRI, statement_id=other), {**body, "id": sid}],
        headers=lrs,
    )
    assert r.status_code == 200, r.text
    assert r.json() == [other, sid]
    assert await completed(client, tenant_a) == [activity]


async def test_voiding_undoes_the_completion(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    lrs = await setup(client, tenant_a)
    activity, iri = await recommended_with_iri(client, tenant_a)
    sid = str(uuid.uuid4())
    r = await client.post(
        "/xapi/statements", json=statement("completed", iri, statement_id=sid), headers=lrs
    )
    assert r.status_code == 200
    assert await completed(client, tenant_a) == [activity]
    r = await client.post("/xapi/statements", json=voiding(sid), headers=lrs)
    assert r.status_code == 200, r.text
    void_id = r.json()[0]
    assert await completed(client, tenant_a) == []
    assert activity in [st["activity"] for st in (await plan(client, tenant_a))["steps"]]
    r = await client.get("/xapi/statements", params={"statementId": sid}, headers=lrs)
    assert r.status_code == 404
    r = await client.get("/xapi/statements", params={"voidedStatementId": sid}, headers=lrs)
    assert r.status_code == 200
    assert r.json()["id"] == sid
    # A voiding statement cannot be voided: voiding it changes nothing.
    r = await client.post("/xapi/statements", json=voiding(void_id), headers=lrs)
    assert r.status_code == 200
    r = await client.get("/xapi/statements", params={"voidedStatementId": sid}, headers=lrs)
    assert r.status_code == 200
    # A manual completion is not undone by voiding a statement that recorded nothing.
    r = await client.post(
        "/v1/subjects/emp-1/completed-activities",
        json={"activity": activity, "completed_at": "2026-10-22T00:00:00Z"},
        headers=tenant_a.headers,
    )
    assert r.status_code == 201
    again = str(uuid.uuid4())
    await client.post(
        "/xapi/statements", json=statement("completed", iri, statement_id=again), headers=lrs
    )
    await client.post("/xapi/statements", json=voiding(again), headers=lrs)
    assert await completed(client, tenant_a) == [activity]


def _two_identifiers() -> dict[str, Any]:
    body = statement("completed", UNKNOWN_IRI)
    body["actor"]["mbox"] = "mailto:ada@example.com"
    return body


def _verb_without_iri() -> dict[str, Any]:
    return {**statement("completed", UNKNOWN_IRI), "verb": {"display": {"en-US": "completed"}}}


def _verb_not_an_iri() -> dict[str, Any]:
    return {**statement("completed", UNKNOWN_IRI), "verb": {"id": "completed"}}


BAD_STATEMENTS: dict[str, tuple[Any, list[str | int]]] = {
    "two actor identifiers": (_two_identifiers(), ["actor"]),
    "no actor identifier": (
        {**statement("completed", UNKNOWN_IRI), "actor": {"name": "Ada"}},
        ["actor"],
    ),
    "verb without IRI": (_verb_without_iri(), ["verb", "id"]),
    "verb id not an IRI": (_verb_not_an_iri(), ["verb", "id"]),
    "malformed id": (statement("completed", UNKNOWN_IRI, statement_id="1234-not-a-uuid"), ["id"]),
    "timestamp without zone": (
        statement("completed", UNKNOWN_IRI, timestamp="2026-10-20T09:30:00"),
        ["timestamp"],
    ),
    "account without homePage": (
        {**statement("completed", UNKNOWN_IRI), "actor": {"account": {"name": "emp-1"}}},
        ["actor", "account"],
    ),
    "mbox not mailto": (
        {**statement("completed", UNKNOWN_IRI), "actor": {"mbox": "ada@example.com"}},
        ["actor", "mbox"],
    ),
    "activity without id": (
        {**statement("completed", UNKNOWN_IRI), "object": {"objectType": "Activity"}},
        ["object", "id"],
    ),
    "activity id not an IRI": (statement("completed", "system design"), ["object", "id"]),
    "scaled score above 1": (
        statement("completed", UNKNOWN_IRI, result={"score": {"scaled": 1.5}}),
        ["result", "score", "scaled"],
    ),
    "null property": (statement("completed", UNKNOWN_IRI, context=None), ["context"]),
    "unknown property": (statement("completed", UNKNOWN_IRI, grade="A"), ["grade"]),
    "voiding a non-reference": (
        {**voiding(str(uuid.uuid4())), "object": {"id": UNKNOWN_IRI}},
        ["object", "objectType"],
    ),
    "no verb": (
        {k: v for k, v in statement("completed", UNKNOWN_IRI).items() if k != "verb"},
        ["verb"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_STATEMENTS))
async def test_statements_breaking_the_rules_get_400_naming_the_field(
    client: httpx.AsyncClient, tenant_a: Tenant, case: str
) -> None:
    lrs = await setup(client, tenant_a)
    _, iri = await recommended_with_iri(client, tenant_a)
    bad, loc = BAD_STATEMENTS[case]
    good_id = str(uuid.uuid4())
    # The bad statement travels with a good one: the whole list is refused.
    batch = [statement("completed", iri, statement_id=good_id), bad]
    r = await client.post("/xapi/statements", json=batch, headers=lrs)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["loc"] == [1, *loc]
    r = await client.post("/xapi/statements", json=bad, headers=lrs)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["loc"] == loc
    assert await completed(client, tenant_a) == []
    r = await client.get("/xapi/statements", params={"statementId": good_id}, headers=lrs)
    assert r.status_code == 404


async def test_protocol_errors_are_400(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any
) -> None:
    lrs = await setup(client, tenant_a)
    body = statement("completed", UNKNOWN_IRI)
    app.state.settings = app.state.settings.model_copy(update={"xapi_max_statements": 2})
    r = await client.post("/xapi/statements", json=[body, body, body], headers=lrs)
    assert r.status_code == 400
    assert r.json()["errors"][0]["loc"] == ["body"]
    no_version = {k: v for k, v in lrs.items() if k != "X-Experience-API-Version"}
    for headers in (no_version, {**lrs, "X-Experience-API-Version": "0.95"}):
        r = await client.post("/xapi/statements", json=body, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["loc"] == ["header", "X-Experience-API-Version"]
    r = await client.post(
        "/xapi/statements", json=body, headers={**lrs, "X-Experience-API-Version": "2.0.0"}
    )
    assert r.status_code == 200
    assert r.headers["X-Experience-API-Version"] == "2.0.0"
    sid = str(uuid.uuid4())
    r = await client.post(
        "/xapi/statements",
        json=[{**body, "id": sid}, {**body, "id": sid}],
        headers=lrs,
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["loc"] == [1, "id"]
    r = await client.post(
        "/xapi/statements",
        content=b"{not json",
        headers={**lrs, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    r = await client.put("/xapi/statements", json=body, headers=lrs)
    assert r.status_code == 400  # no statementId
    r = await client.put(
        "/xapi/statements",
        params={"statementId": str(uuid.uuid4())},
        json={**body, "id": str(uuid.uuid4())},
        headers=lrs,
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["loc"] == ["id"]
    r = await client.get("/xapi/statements", params={"statementId": "nope"}, headers=lrs)
    assert r.status_code == 400
    r = await client.get("/xapi/statements", headers=lrs)
    assert r.status_code == 400


async def test_basic_credentials_need_a_valid_key_and_the_scope(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup(client, tenant_a)
    body = statement("completed", UNKNOWN_IRI)
    wrong = base64.b64encode(b"lrs:not-a-key").decode()
    for auth in (None, f"Basic {wrong}", "Basic !!!"):
        headers = {"X-Experience-API-Version": "1.0.3"}
        if auth:
            headers["Authorization"] = auth
        r = await client.post("/xapi/statements", json=body, headers=headers)
        assert r.status_code == 401, r.text
    reader = basic(await tenant_a.key("learning-records:read"))
    r = await client.post("/xapi/statements", json=body, headers=reader)
    assert r.status_code == 403
    writer = basic(await tenant_a.key("learning-records:write"))
    r = await client.post("/xapi/statements", json=body, headers=writer)
    assert r.status_code == 200
    r = await client.get("/xapi/statements", params={"statementId": r.json()[0]}, headers=writer)
    assert r.status_code == 403
    # A Bearer key works as everywhere else.
    r = await client.post(
        "/xapi/statements",
        json=body,
        headers={**tenant_a.headers, "X-Experience-API-Version": "1.0.3"},
    )
    assert r.status_code == 200


async def test_a_registered_mailbox_maps_mbox_and_its_sha1(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    r = await client.post(
        "/v1/learning-records/mboxes/emp-1",
        json={"mbox": "mailto:ada@example.com"},
        headers=tenant_a.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["mbox_sha1sums"] == [mbox_sha1("mailto:ada@example.com")]
    base = "https://competency-ladder.dev/xapi/activities/product-management/"
    by_mbox = {
        **statement("completed", base + "system_design_course"),
        "actor": {"mbox": "mailto:ada@example.com"},
    }
    by_sum = {
        **statement("passed", base + "certified_product_owner"),
        "actor": {"mbox_sha1sum": mbox_sha1("mailto:ada@example.com").upper()},
    }
    r = await client.post("/xapi/statements", json=[by_mbox, by_sum], headers=lrs)
    assert r.status_code == 200, r.text
    assert sorted(await completed(client, tenant_a)) == [
        "certified_product_owner",
        "system_design_course",
    ]
    await client.post("/v1/subjects", json=subject("emp-2"), headers=tenant_a.headers)
    r = await client.post(
        "/v1/learning-records/mboxes/emp-2",
        json={"mbox": "mailto:ada@example.com"},
        headers=tenant_a.headers,
    )
    assert r.status_code == 409


async def test_unmapped_statements_are_acknowledged_and_reported(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any
) -> None:
    lrs = await setup(client, tenant_a)
    _, iri = await recommended_with_iri(client, tenant_a)
    stranger = statement("completed", iri, ref="nobody-7")
    unknown = statement("completed", UNKNOWN_IRI)
    other_home = {
        **statement("completed", iri),
        "actor": {"account": {"homePage": "https://other.example.com", "name": "emp-1"}},
    }
    for body in (stranger, stranger, unknown, other_home):
        r = await client.post("/xapi/statements", json=body, headers=lrs)
        assert r.status_code == 200, r.text
    r = await client.get("/v1/learning-records/unmapped", headers=tenant_a.headers)
    assert r.status_code == 200, r.text
    lines = {(x["reason"], x["actor_id"], x["activity_iri"]): x for x in r.json()["items"]}
    assert lines[("unknown_actor", f"{LMS}|nobody-7", iri)]["statements"] == 2
    assert lines[("unknown_activity", None, UNKNOWN_IRI)]["statements"] == 1
    assert lines[("unknown_actor", "https://other.example.com|emp-1", iri)]["statements"] == 1
    assert len(lines) == 3
    assert await completed(client, tenant_a) == []
    # Statements about nobody mapped are not kept.
    sid = str(uuid.uuid4())
    await client.post("/xapi/statements", json={**stranger, "id": sid}, headers=lrs)
    r = await client.get("/xapi/statements", params={"statementId": sid}, headers=lrs)
    assert r.status_code == 404
    # Bounded: the least recently seen lines make room.
    app.state.settings = app.state.settings.model_copy(update={"xapi_unmapped_limit": 3})
    for n in range(4):
        body = statement("completed", f"{UNKNOWN_IRI}-{n}")
        r = await client.post("/xapi/statements", json=body, headers=lrs)
        assert r.status_code == 200
    r = await client.get("/v1/learning-records/unmapped", headers=tenant_a.headers)
    iris = [x["activity_iri"] for x in r.json()["items"]]
    assert len(iris) == 3
    assert f"{UNKNOWN_IRI}-3" in iris and f"{UNKNOWN_IRI}-0" not in iris
    r = await client.get("/v1/learning-records/unmapped", headers=lrs)
    assert r.status_code == 403


async def test_tenants_are_isolated(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    lrs_a = await setup(client, tenant_a)
    _, iri = await recommended_with_iri(client, tenant_a)
    sid = str(uuid.uuid4())
    r = await client.post(
        "/xapi/statements", json=statement("completed", iri, statement_id=sid), headers=lrs_a
    )
    assert r.status_code == 200
    lrs_b = basic(await tenant_b.key("learning-records:write", "learning-records:read"))
    r = await client.get("/xapi/statements", params={"statementId": sid}, headers=lrs_b)
    assert r.status_code == 404
    # The same id in another tenant is another statement: no conflict, no effect on tenant A.
    r = await client.post(
        "/xapi/statements",
        json=voiding(sid) | {"id": sid},
        headers=lrs_b,
    )
    assert r.status_code == 200, r.text
    r = await client.get("/xapi/statements", params={"statementId": sid}, headers=lrs_a)
    assert r.status_code == 200
    assert len(await completed(client, tenant_a)) == 1
    r = await client.get("/v1/learning-records/settings", headers=tenant_b.headers)
    assert r.json() == {"account_home_pages": [], "result_ratings": False}


async def test_erasure_removes_statements_and_report_lines(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    _, iri = await recommended_with_iri(client, tenant_a)
    # Before emp-9 exists the statement is unmapped and reported under the actor's id.
    early = statement("completed", iri, ref="emp-9")
    mailbox = {**statement("completed", iri), "actor": {"mbox": "mailto:emp9@example.com"}}
    await client.post("/xapi/statements", json=[early, mailbox], headers=lrs)
    r = await client.post("/v1/subjects", json=subject("emp-9"), headers=tenant_a.headers)
    assert r.status_code == 201
    r = await client.post(
        "/v1/learning-records/mboxes/emp-9",
        json={"mbox": "mailto:emp9@example.com"},
        headers=tenant_a.headers,
    )
    assert r.status_code == 200
    sid = str(uuid.uuid4())
    r = await client.post(
        "/xapi/statements",
        json=statement("completed", iri, ref="emp-9", statement_id=sid),
        headers=lrs,
    )
    assert await completed(client, tenant_a, "emp-9") != []
    report = (await client.get("/v1/learning-records/unmapped", headers=tenant_a.headers)).json()
    assert len(report["items"]) == 2
    r = await client.delete("/v1/subjects/emp-9", headers=tenant_a.headers)
    assert r.status_code == 204, r.text
    r = await client.get("/xapi/statements", params={"statementId": sid}, headers=lrs)
    assert r.status_code == 404
    report = (await client.get("/v1/learning-records/unmapped", headers=tenant_a.headers)).json()
    assert report["items"] == []
    async with tenant_a.sessionmaker() as session:
        await bind_tenant(session, tenant_a.id)
        for table in (XapiStatement, XapiUnmapped, LearningRecordAgent):
            rows = (await session.exec(select(table))).all()
            assert not [row for row in rows if "emp-9" in str(row.model_dump())], table
        assert len((await session.exec(select(XapiStatement))).all()) == 2  # ids and digests
    # The same id may come again (e.g. a replay after the person returns): it is new.
    r = await client.post("/v1/subjects", json=subject("emp-9"), headers=tenant_a.headers)
    r = await client.put(
        "/xapi/statements",
        params={"statementId": sid},
        json=statement("completed", iri, ref="emp-9"),
        headers=lrs,
    )
    assert r.status_code == 204
    assert await completed(client, tenant_a, "emp-9") != []


async def test_settings_are_admin_only_and_validated(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    r = await client.put(
        "/v1/learning-records/settings",
        json={"account_home_pages": ["not a url"]},
        headers=tenant_a.headers,
    )
    assert r.status_code == 422
    key = await tenant_a.key("learning-records:write")
    r = await client.put(
        "/v1/learning-records/settings",
        json={"account_home_pages": [LMS]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 403
