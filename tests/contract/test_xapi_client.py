"""A real xAPI client drives the statement endpoint: TinCanPython as a learning platform uses it.

TinCanPython (`tincan` on PyPI, a dev dependency) is pointed at `ladder serve`'s `/xapi/` as its
remote LRS, with HTTP Basic credentials whose password is an API key, and used unchanged: it
saves one statement (POST without an id, PUT with one), saves a list, reads one back by id and
voids one. The effect is then checked over the service's own API: the person's completed
activities and the plan that no longer recommends what was completed.

No shim was needed. TinCan's `RemoteLRS` opens `http.client` connections itself (plain HTTP to
the loopback server here), sends `X-Experience-API-Version: 1.0.3` on every request, serialises
timestamps with their zone (`+00:00`) and adds `"version"` to statements, all of which the
service accepts.
"""

from datetime import UTC, datetime
from typing import Any

import httpx
from tincan import (  # type: ignore[import-untyped]  # the library ships no type information
    Activity,
    Agent,
    AgentAccount,
    LanguageMap,
    RemoteLRS,
    Statement,
    StatementRef,
    Verb,
)

from tests.contract.conftest import Served

LMS = "https://lms.example.com"
ADL = "http://adlnet.gov/expapi/verbs/"
AS_OF = "2026-12-01T00:00:00Z"
RATINGS = {"execution": 3, "technical_depth": 1, "customer_discovery": 2, "strategic_thinking": 2}


def _plan(api: httpx.Client) -> dict[str, Any]:
    r = api.get(
        "/v1/subjects/ada/recommendations",
        params={"as_of": AS_OF, "target_level": "senior_pm", "max_steps": 20, "budget_hours": 5000},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _completed(api: httpx.Client) -> dict[str, str]:
    r = api.get("/v1/subjects/ada/completed-activities")
    assert r.status_code == 200, r.text
    return {item["activity"]: item["completed_at"] for item in r.json()["items"]}


def _completion(iri: str, verb: str = "completed", day: int = 20) -> Statement:
    """What a learning platform emits when Ada finishes (or fails) a course."""
    return Statement(
        actor=Agent(name="Ada Byron", account=AgentAccount(home_page=LMS, name="ada")),
        verb=Verb(id=ADL + verb, display=LanguageMap({"en-US": verb})),
        object=Activity(id=iri),
        timestamp=datetime(2026, 11, day, 16, 0, tzinfo=UTC),
    )


def test_tincan_as_a_learning_platform_keeps_the_plan_current(served: Served) -> None:
    admin = {"Authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.base_url, headers=admin, timeout=30) as api:
        r = api.post(
            "/v1/subjects",
            json={
                "external_ref": "ada",
                "display_name": "Ada Byron",
                "track": "management",
                "current_level": "pm",
            },
        )
        assert r.status_code == 201, r.text
        r = api.post(
            "/v1/assessments",
            json={
                "subject_ref": "ada",
                "framework": {"key": "product-management"},
                "rater_ref": "mgr-17",
                "rater_role": "manager",
                "assessed_at": "2026-10-01T09:00:00Z",
                "ratings": [{"competency": k, "proficiency": v} for k, v in RATINGS.items()],
            },
        )
        assert r.status_code == 201, r.text
        r = api.put("/v1/learning-records/settings", json={"account_home_pages": [LMS]})
        assert r.status_code == 200, r.text
        r = api.post(
            "/v1/api-keys",
            json={
                "name": "lrs forwarder",
                "scopes": ["learning-records:write", "learning-records:read"],
            },
        )
        assert r.status_code == 201, r.text
        lrs_key = r.json()["key"]

        before = _plan(api)
        with_iri = [(st["activity"], st["iri"]) for st in before["steps"] if st["iri"]]
        assert len(with_iri) >= 2, before  # two courses or certifications the LMS can open
        (single, single_iri), (voided, voided_iri) = with_iri[:2]
        assert _completed(api) == {}

        lrs = RemoteLRS(
            endpoint=f"{served.base_url}/xapi/",
            username="lrs-forwarder",
            password=lrs_key,
            version="1.0.3",
        )

        # One statement without an id: POST, and TinCan takes the id the service answers.
        first = _completion(single_iri)
        saved = lrs.save_statement(first)
        assert saved.success, (saved.response.status, saved.data)
        assert first.id is not None
        # A list: a failed attempt (records nothing), then a completion (voided below).
        to_void = _completion(voided_iri, day=21)
        batch = [_completion(voided_iri, verb="failed", day=18), to_void]
        saved = lrs.save_statements(batch)
        assert saved.success, (saved.response.status, saved.data)
        assert all(st.id is not None for st in batch)  # the ids the service answered
        assert len({str(st.id) for st in batch}) == 2
        # One statement with its own id: TinCan PUTs it under ?statementId= (a replay: no-op).
        again = _completion(single_iri)
        again.id = first.id
        saved = lrs.save_statement(again)
        assert saved.success, (saved.response.status, saved.data)
        assert set(_completed(api)) == {single, voided}
        assert sorted(_plan(api)["excluded_activities"]) == sorted([single, voided])

        # Read one back by id, as the service keeps it.
        got = lrs.retrieve_statement(str(first.id))
        assert got.success, (got.response.status, got.data)
        kept = got.content
        assert str(kept.id) == str(first.id)
        assert kept.verb.id == ADL + "completed"
        assert kept.object.id == single_iri
        assert kept.actor.account.name == "ada" and kept.actor.account.home_page == LMS
        assert kept.timestamp == datetime(2026, 11, 20, 16, 0, tzinfo=UTC)

        # Void the list's completion: a `voided` statement whose object is a StatementRef.
        voiding = Statement(
            actor=Agent(mbox="mailto:lms-admin@example.com"),
            verb=Verb(id=ADL + "voided", display=LanguageMap({"en-US": "voided"})),
            object=StatementRef(id=to_void.id),
        )
        saved = lrs.save_statement(voiding)
        assert saved.success, (saved.response.status, saved.data)
        # The voided statement is read only as voided from now on.
        gone = lrs.retrieve_statement(str(to_void.id))
        assert not gone.success and gone.response.status == 404
        back = lrs.retrieve_voided_statement(str(to_void.id))
        assert back.success, (back.response.status, back.data)
        assert str(back.content.id) == str(to_void.id)

        # The effect, over the service's own API.
        done = _completed(api)
        assert set(done) == {single}  # the voided completion is gone, the failure never counted
        assert done[single].startswith("2026-11-20T16:00:00")
        after = _plan(api)
        steps = [st["activity"] for st in after["steps"]]
        assert single not in steps
        assert after["excluded_activities"] == [single]
        assert voided in steps  # recommended again once its completion was voided
