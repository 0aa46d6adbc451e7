"""Record the OpenAPI examples by running a realistic scenario against the real app.

Development tooling, not part of the service: `make openapi` runs it (`python -m tools.openapi`)
and commits the recording as `openapi/examples.json`, which `app/openapi_examples.py` adds to
the served document.

`write_examples` migrates a temporary SQLite database, loads the built-in ladder, creates a
tenant with an admin key and then calls every operation of the app's OpenAPI document in-process
(ASGI, no network): Ada, a PM on the management track, rated by her manager, a peer and
herself as in `examples/quickstart.sh`, her score, gaps and plan; a small ladder `acme-pm`
trimmed from the built-in one through its whole life (create, update, publish, import, draft,
clone, export, CASE); keys, webhooks and the audit log; and a few refusals. Per operation it
keeps the parameters and body sent and the first answer of each status and media type.

The app's clock is pinned for the run, and random ids, API keys and webhook secrets are replaced
by placeholders (secrets by an obvious `EXAMPLE-secret-...`, so secret scanners stay quiet),
so the file changes only when the app's answers do. Idempotency keys start with `docs-example-`,
so "Try it out" never collides with the README's quickstart. Long lists in the scoring answers
are cut to the items about the competencies and levels the README discusses; nothing is added.
"""

import asyncio
import base64
import contextlib
import copy
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import httpx

from app import models
from app.auth import service as auth_service
from app.auth.keys import DEFAULT_KEY_PREFIX, KEY_PATTERN, format_token
from app.cli import migrate
from app.config import Settings
from app.db import create_engine, make_sessionmaker
from app.frameworks.files import dump_yaml, load_file
from app.frameworks.service import BUILTIN_DIR, ensure_builtin
from app.main import create_app
from app.openapi_examples import EXAMPLES_FILE

BASE_URL = "https://ladder.example.com"
AS_OF = "2026-11-01T00:00:00Z"
LADDER = {"key": "product-management"}
WEBHOOK_URL = "https://hooks.example.com/ladder"

# The trimmed copy of the built-in ladder used for the framework operations.
ACME_LEVELS = ("pm", "senior_pm")
ACME_COMPETENCIES = ("execution", "stakeholder_management", "strategic_thinking")
ACME_ACTIVITIES = ("competitive_teardown", "stakeholder_map_and_alignment")
ACME_INDICATORS = 1

# Ada's ratings from examples/quickstart.sh: manager and peer agree, her self rating puts
# stakeholder management at 4.
ADA = {
    "customer_discovery": 3,
    "execution": 3,
    "technical_depth": 2,
    "prioritization": 3,
    "data_driven_decisions": 3,
    "stakeholder_management": 2,
    "communication": 3,
    "cross_functional_leadership": 2,
    "strategic_thinking": 2,
    "market_analysis": 2,
    "business_acumen": 2,
    "mentoring_and_coaching": 2,
    "handling_scale": 2,
    "organization_building": 1,
}
GRACE = dict(zip(ADA, (4, 4, 3, 3, 4, 3, 4, 3, 3, 3, 3, 3, 2, 2), strict=True))
LINUS = dict(zip(ADA, (2, 2, 2, 2, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1), strict=True))

# Scoring answers list every level and competency; examples keep the ones the README discusses.
MAX_ITEMS = 3
FOCUS = ("execution", "stakeholder_management", "strategic_thinking", "pm", "senior_pm", "group_pm")
TRIMMED = (
    "GET /v1/subjects/{ref}/score",
    "GET /v1/subjects/{ref}/gaps",
    "GET /v1/subjects/{ref}/recommendations",
    "POST /v1/subjects/{ref}/what-if",
    "POST /v1/evaluate",
    "POST /v1/cohorts/evaluate",
    # The built-in ladder's CASE document lists its 49 activities in an extension.
    "GET /ims/case/v1p1/CFDocuments",
)
KEEP_WHOLE = ("path",)

# The app's clock during the run: after the assessments, the score date and Ada's activity.
CLOCK_START = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
PLACEHOLDER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://competency-ladder.dev/examples")


def _ratings(values: dict[str, int], **extra: Any) -> list[dict[str, Any]]:
    return [{"competency": c, "proficiency": p, **extra} for c, p in values.items()]


def acme_document() -> dict[str, Any]:
    """A small ladder cut from the built-in one: two levels, three competencies and areas."""
    ladder = load_file((BUILTIN_DIR / "product-management.yaml").read_bytes(), "ladder.yaml")
    competencies = [c for c in ladder["competencies"] if c["key"] in ACME_COMPETENCIES]
    for comp in competencies:
        comp["expectations"] = {
            level: {**exp, "indicators": exp["indicators"][:ACME_INDICATORS]}
            for level, exp in comp["expectations"].items()
            if level in ACME_LEVELS
        }
    areas = {c["area"] for c in competencies}
    activities = []
    for act in ladder["activities"]:
        if act["key"] in ACME_ACTIVITIES:
            act["develops"] = {c: n for c, n in act["develops"].items() if c in ACME_COMPETENCIES}
            act["level_band"] = {"from": "pm", "to": "senior_pm"}
            activities.append(act)
    return {
        "format": ladder["format"],
        "key": "acme-pm",
        "name": "Acme Product Management Ladder",
        "description": "Acme's product ladder, adapted from the built-in template.",
        "settings": ladder["settings"],
        "scale": ladder["scale"],
        "tracks": [],
        "levels": [lv for lv in ladder["levels"] if lv["key"] in ACME_LEVELS],
        # Without emphasis a level weighs its competencies by their own weights.
        "areas": [{**a, "emphasis": {}} for a in ladder["areas"] if a["key"] in areas],
        "competencies": competencies,
        "activities": activities,
    }


class Clock:
    """The app's clock during the run: readings a millisecond apart, a second between requests.

    Every timestamp the app makes comes from ``app.models.utcnow``; pinning it makes them the
    same on every run, and an assessment date or expiry is never in the past or future by accident.
    """

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self, tz: tzinfo | None = None) -> datetime:
        """The next reading (``datetime.now`` for ``app.models``)."""
        self.moment += timedelta(milliseconds=1)
        return self.moment.astimezone(tz) if tz else self.moment

    def next_request(self) -> None:
        """Move to the next whole second."""
        self.moment = self.moment.replace(microsecond=0) + timedelta(seconds=1)

    def __getattr__(self, name: str) -> Any:
        # Everything else of the datetime class, unchanged.
        return getattr(datetime, name)


@contextlib.contextmanager
def pinned_clock(clock: Clock) -> Iterator[None]:
    """Let ``app.models.utcnow`` read `clock` instead of the system clock."""
    namespace = vars(models)
    original = namespace["datetime"]
    namespace["datetime"] = clock
    try:
        yield
    finally:
        namespace["datetime"] = original


class Recorder:
    """Calls operations of the app and keeps, per operation, what was sent and answered."""

    def __init__(
        self, client: httpx.AsyncClient, document: dict[str, Any], token: str, clock: Clock
    ) -> None:
        self.client = client
        self.token = token
        self.clock = clock
        self.operations: dict[str, dict[str, Any]] = {}
        self.described: set[str] = set()
        self.parameters: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        for path, item in document["paths"].items():
            for method, op in item.items():
                key = f"{method.upper()} {path}"
                self.parameters[key] = {(p["in"], p["name"]): p for p in op.get("parameters", [])}

    async def call(
        self,
        method: str,
        template: str,
        summary: str,
        *,
        path: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        alternatives: dict[str, str] | None = None,
        expect: int | None = None,
        authenticated: bool = True,
        record: bool = True,
    ) -> httpx.Response:
        """Make one request; fail unless it answers 2xx (or `expect`); record it as an example."""
        key = f"{method} {template}"
        documented = self.parameters.get(key)
        if documented is None:
            raise RuntimeError(f"{key} is not an operation of the app")
        sent = {"path": path or {}, "query": query or {}, "header": headers or {}}
        for where, values in sent.items():
            for name in values:
                if (where, name) not in documented:
                    raise RuntimeError(f"{key} documents no {where} parameter {name!r}")
        url = template.format(**{k: str(v) for k, v in (path or {}).items()})
        self.clock.next_request()
        request_headers = dict(headers or {})
        if authenticated:
            request_headers["Authorization"] = f"Bearer {self.token}"
        response = await self.client.request(
            method,
            url,
            params={k: _query_value(v) for k, v in (query or {}).items()},
            headers=request_headers,
            json=body,
        )
        ok = response.status_code == expect if expect else response.is_success
        if not ok:
            raise RuntimeError(f"{key} answered {response.status_code}: {response.text[:2000]}")
        if record:
            self._record(key, summary, sent, body, alternatives or {}, response)
        return response

    def _record(
        self,
        key: str,
        summary: str,
        sent: dict[str, dict[str, Any]],
        body: Any,
        alternatives: dict[str, str],
        response: httpx.Response,
    ) -> None:
        op = self.operations.setdefault(key, {"parameters": {}, "request": {}, "responses": {}})
        if response.is_success and key not in self.described:
            # What the first successful call sent is the operation's example request.
            self.described.add(key)
            request = {} if body is None else {"application/json": body, **alternatives}
            # Copies: the scenario goes on changing its documents after sending them.
            request, sent = copy.deepcopy(request), copy.deepcopy(sent)
            op["parameters"] = {where: values for where, values in sent.items() if values}
            op["request"] = {m: {"summary": summary, "value": v} for m, v in request.items()}
        status = op["responses"].setdefault(str(response.status_code), {})
        if not response.content:
            return
        media = response.headers["content-type"].split(";")[0].strip()
        value = response.json() if media.endswith("json") else response.text
        status.setdefault(media, {"summary": summary, "value": value})


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return value


def _ndjson(items: list[Any]) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


async def _tenant(settings: Settings) -> str:
    """The scenario's tenant and its admin key."""
    engine = create_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            await ensure_builtin(session)
            _, token = await auth_service.bootstrap_tenant(
                session,
                "acme",
                name="Acme Inc.",
                prefix=settings.api_key_prefix,
                key_name="ops admin",
            )
            await session.commit()
            return token
    finally:
        await engine.dispose()


async def record_examples(settings: Settings) -> dict[str, Any]:
    """Run the scenario against a migrated database; the recorded examples, unprocessed.

    Returns ``{"operations": ..., "stable_ids": ...}``: the ids of the built-in ladder's CASE
    objects are the same on every installation, so they are kept as they are.
    """
    clock = Clock(CLOCK_START)
    with pinned_clock(clock):
        token = await _tenant(settings)
        app = create_app(settings)
        engine = create_engine(settings)
        # What the lifespan would do, without the webhook dispatcher: deliveries stay pending.
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                rec = Recorder(client, app.openapi(), token, clock)
                stable = await _scenario(rec)
        finally:
            await engine.dispose()
    return {"operations": rec.operations, "stable_ids": sorted(stable)}


async def _scenario(rec: Recorder) -> set[str]:
    await _health(rec)
    await _frameworks(rec)
    stable = await _case(rec)
    await _webhooks_subscribe(rec)
    await _ada(rec)
    # Before the bulk import: it enqueues its readiness changes in the order of random ids.
    await _webhooks_read(rec)
    await _team(rec)
    await _analytics(rec)
    await _evolution_and_calibration(rec)
    await _learning_records(rec)
    await _keys_and_audit(rec)
    await _errors(rec)
    await _cleanup(rec)
    return stable


async def _health(rec: Recorder) -> None:
    await rec.call("GET", "/healthz", "The process is up", authenticated=False)
    await rec.call("GET", "/readyz", "The database answers", authenticated=False)


async def _frameworks(rec: Recorder) -> None:
    doc = acme_document()
    created = (
        await rec.call(
            "POST",
            "/v1/frameworks",
            "Create Acme's ladder, trimmed from the built-in one, as draft version 1",
            headers={"Idempotency-Key": "docs-example-acme-pm-create"},
            body=doc,
        )
    ).json()
    version = {"key": "acme-pm", "version": 1}
    await rec.call(
        "GET",
        "/v1/frameworks/{key}/versions/{version}",
        "Version 1 of acme-pm, a draft, with the ETag to update it",
        path=version,
    )
    doc["settings"] = {**doc["settings"], "readiness_threshold": 0.8}
    await rec.call(
        "PUT",
        "/v1/frameworks/{key}/versions/{version}",
        "Lower the readiness threshold of the draft to 0.8",
        path=version,
        headers={"if-match": created["etag"]},
        body=doc,
    )
    await rec.call(
        "POST",
        "/v1/frameworks/{key}/versions/{version}/publish",
        "Publish version 1 of acme-pm",
        path=version,
    )
    doc["competencies"][0]["weight"] = 1.5
    await rec.call(
        "POST",
        "/v1/frameworks/import",
        "Import the next revision of the ladder file (execution weighs 1.5) and publish it",
        query={"publish": True},
        headers={"Idempotency-Key": "docs-example-acme-pm-v2"},
        body=doc,
        alternatives={"application/yaml": dump_yaml(doc)},
    )
    doc["activities"][0]["effort_hours"] = 24
    await rec.call(
        "POST",
        "/v1/frameworks/{key}/versions",
        "Start draft version 3 of acme-pm with a shorter competitive teardown",
        path={"key": "acme-pm"},
        headers={"Idempotency-Key": "docs-example-acme-pm-v3"},
        body=doc,
    )
    await rec.call(
        "GET", "/v1/frameworks/{key}/versions", "Versions of acme-pm", path={"key": "acme-pm"}
    )
    await rec.call(
        "GET",
        "/v1/frameworks/{key}",
        "The latest published version of acme-pm",
        path={"key": "acme-pm"},
    )
    await rec.call("GET", "/v1/frameworks", "Acme's ladder and the built-in template")
    await rec.call(
        "GET",
        "/v1/frameworks/{key}/versions/{version}/export",
        "Version 2 of acme-pm as a framework file",
        path={"key": "acme-pm", "version": 2},
        query={"format": "json"},
    )
    await rec.call(
        "POST",
        "/v1/frameworks/{key}/clone",
        "Copy acme-pm for the EMEA product team",
        path={"key": "acme-pm"},
        headers={"Idempotency-Key": "docs-example-acme-pm-emea"},
        body={"key": "acme-pm-emea", "name": "Acme Product Management Ladder (EMEA)"},
    )


async def _case(rec: Recorder) -> set[str]:
    """CASE export, import and reads; returns the built-in ladder's CASE identifiers."""
    package = (
        await rec.call(
            "GET",
            "/v1/frameworks/{key}/versions/{version}/export/case",
            "Version 2 of acme-pm as a CASE 1.1 package",
            path={"key": "acme-pm", "version": 2},
        )
    ).json()
    await rec.call(
        "POST",
        "/v1/frameworks/import/case",
        "Import a CASE package (here acme-pm's own export) under another key",
        query={"key": "acme-pm-case"},
        body=package,
    )
    await rec.call(
        "GET", "/ims/case/v1p1/CFDocuments", "Every published framework as a CASE document"
    )
    document_id = package["CFDocument"]["identifier"]
    await rec.call(
        "GET",
        "/ims/case/v1p1/CFDocuments/{sourcedId}",
        "acme-pm's CASE document",
        path={"sourcedId": document_id},
    )
    await rec.call(
        "GET",
        "/ims/case/v1p1/CFPackages/{sourcedId}",
        "acme-pm's CASE package",
        path={"sourcedId": document_id},
    )
    item = next(
        i for i in package["CFItems"] if i.get("humanCodingScheme") == "stakeholder_management"
    )
    await rec.call(
        "GET",
        "/ims/case/v1p1/CFItems/{sourcedId}",
        "The stakeholder management competency as a CASE item",
        path={"sourcedId": item["identifier"]},
    )
    builtin = await rec.call(
        "GET",
        "/v1/frameworks/{key}/versions/{version}/export/case",
        "",
        path={"key": "product-management", "version": 1},
        record=False,
    )
    return set(_uuids(builtin.json())) | {str(models.SYSTEM_TENANT_ID)}


async def _webhooks_subscribe(rec: Recorder) -> None:
    await rec.call(
        "POST",
        "/v1/webhooks",
        "Send new assessments and readiness changes to Acme's HR system",
        body={"url": WEBHOOK_URL, "events": ["assessment.created", "readiness.changed"]},
    )


async def _ada(rec: Recorder) -> None:
    await rec.call(
        "POST",
        "/v1/subjects",
        "Register Ada, a PM on the management track in the payments team",
        headers={"Idempotency-Key": "docs-example-ada-subject"},
        body={
            "external_ref": "ada",
            "display_name": "Ada Byron",
            "track": "management",
            "current_level": "pm",
            "attributes": {"team": "payments", "department": "product"},
        },
    )
    manager = [
        {**r, "evidence": "Shipped the payouts revamp"} if r["competency"] == "execution" else r
        for r in _ratings(ADA)
    ]
    # The manager's assessment is the example; the peer's and Ada's own feed the score.
    for role, rater, day, ratings in (
        ("manager", "mgr-17", "2026-10-01", manager),
        ("peer", "peer-4", "2026-10-03", _ratings(ADA)),
        ("self", "ada", "2026-10-05", _ratings({**ADA, "stakeholder_management": 4})),
    ):
        await rec.call(
            "POST",
            "/v1/assessments",
            "Ada's manager rates her against the built-in ladder",
            headers={"Idempotency-Key": f"docs-example-ada-{role}-{day}"},
            body={
                "subject_ref": "ada",
                "framework": LADDER,
                "rater_ref": rater,
                "rater_role": role,
                "assessed_at": f"{day}T09:00:00Z",
                "ratings": ratings,
            },
            record=role == "manager",
        )


async def _team(rec: Recorder) -> None:
    page = (
        await rec.call(
            "GET",
            "/v1/assessments",
            "Ada's assessments, newest first, two per page",
            query={"subject_ref": "ada", "limit": 2},
        )
    ).json()
    await rec.call(
        "GET",
        "/v1/assessments/{assessment_id}",
        "Ada's self assessment",
        path={"assessment_id": page["items"][0]["id"]},
    )
    people = [
        {
            "external_ref": "grace",
            "display_name": "Grace Hopper",
            "track": "ic",
            "current_level": "pm",
            "attributes": {"team": "checkout", "department": "product"},
        },
        {
            "external_ref": "linus",
            "display_name": "Linus Pauling",
            "track": "management",
            "current_level": "pm",
            "attributes": {"team": "payments", "department": "product"},
        },
    ]
    await rec.call(
        "POST",
        "/v1/subjects/bulk",
        "Register two more PMs from the HR system",
        headers={"Idempotency-Key": "docs-example-hris-import-2026-10-06"},
        body=people,
        alternatives={"application/x-ndjson": _ndjson(people)},
    )
    batch = [
        {
            "subject_ref": ref,
            "framework": LADDER,
            "rater_ref": rater,
            "rater_role": "manager",
            "assessed_at": "2026-10-02T15:00:00Z",
            "ratings": _ratings(values),
        }
        for ref, rater, values in (("grace", "mgr-17", GRACE), ("linus", "mgr-9", LINUS))
    ]
    await rec.call(
        "POST",
        "/v1/assessments/bulk",
        "The managers' ratings of Grace and Linus from the review cycle export",
        query={"mode": "all_or_nothing"},
        headers={"Idempotency-Key": "docs-example-review-cycle-2026-h2"},
        body=batch,
        alternatives={"application/x-ndjson": _ndjson(batch)},
    )
    await rec.call(
        "GET",
        "/v1/subjects",
        "The payments team",
        query={"attribute": ["team:payments"], "limit": 50},
    )
    ada = await rec.call("GET", "/v1/subjects/{ref}", "Ada", path={"ref": "ada"})
    await rec.call(
        "PATCH",
        "/v1/subjects/{ref}",
        "Ada moves to London",
        path={"ref": "ada"},
        headers={"if-match": ada.headers["etag"]},
        body={"attributes": {"team": "payments", "department": "product", "location": "london"}},
    )


async def _analytics(rec: Recorder) -> None:
    ada = {"ref": "ada"}
    await rec.call(
        "GET",
        "/v1/subjects/{ref}/score",
        "Where Ada stands on 1 November 2026: PM attained, 0.76 ready for Senior PM",
        path=ada,
        query={"as_of": AS_OF},
    )
    await rec.call(
        "GET",
        "/v1/subjects/{ref}/gaps",
        "What stands between Ada and Senior PM, critical gaps first",
        path=ada,
        query={"target_level": "senior_pm", "as_of": AS_OF},
    )
    await rec.call(
        "GET",
        "/v1/subjects/{ref}/recommendations",
        "Ada's plan toward Senior PM: three activities, 76 hours",
        path=ada,
        query={"as_of": AS_OF},
    )
    await rec.call(
        "POST",
        "/v1/subjects/{ref}/what-if",
        "Ada's standing if strategic thinking were rated 3",
        path=ada,
        body={"changes": {"strategic_thinking": 3}, "as_of": AS_OF},
    )
    await rec.call(
        "GET", "/v1/subjects/{ref}/history", "Ada's score after each assessment", path=ada
    )
    await rec.call(
        "POST",
        "/v1/evaluate",
        "Score ratings an HR system keeps itself (a manager's), nothing stored",
        body={
            "framework": LADDER,
            "track": "management",
            "as_of": AS_OF,
            "ratings": _ratings(
                ADA, rater_ref="mgr-17", rater_role="manager", assessed_at="2026-10-01T09:00:00Z"
            ),
        },
    )
    cohort = {
        "framework": LADDER,
        "filter": {"attributes": {"department": "product"}},
        "as_of": AS_OF,
        "top_gaps": 2,
    }
    await rec.call(
        "POST",
        "/v1/cohorts/evaluate",
        "The product department on 1 November 2026",
        query={"format": "json"},
        body=cohort,
    )
    await rec.call(
        "POST",
        "/v1/cohorts/evaluate",
        "The product department as a CSV table, one row per person",
        query={"format": "csv", "table": "people"},
        body=cohort,
    )
    await rec.call(
        "POST",
        "/v1/subjects/{ref}/completed-activities",
        "Ada finished the competitive teardown",
        path=ada,
        headers={"Idempotency-Key": "docs-example-lms-ada-competitive-teardown"},
        body={"activity": "competitive_teardown", "completed_at": "2026-11-14T16:30:00Z"},
    )
    await rec.call(
        "GET",
        "/v1/subjects/{ref}/completed-activities",
        "Activities Ada has completed",
        path=ada,
    )


async def _evolution_and_calibration(rec: Recorder) -> None:
    acme = {"key": "acme-pm"}
    await rec.call(
        "GET",
        "/v1/frameworks/{key}/diff",
        "What draft version 3 of acme-pm changes against published version 2",
        path=acme,
        query={"from": 2, "to": 3},
    )
    await rec.call(
        "POST",
        "/v1/frameworks/{key}/versions/{version}/impact",
        "Whose level would change if draft version 3 of acme-pm were published",
        path={**acme, "version": 3},
        body={"filter": {"attributes": {"department": "product"}}, "as_of": AS_OF},
    )
    await rec.call(
        "POST",
        "/v1/calibration/rater-effects",
        "How lenient or severe each rater of the product department is",
        body={
            "framework": LADDER,
            "filter": {"attributes": {"department": "product"}},
            "as_of": AS_OF,
        },
    )
    await _calibration_session(rec)


async def _calibration_session(rec: Recorder) -> None:
    opened = await rec.call(
        "POST",
        "/v1/calibration/sessions",
        "The product department's Q4 calibration: the snapshot is taken",
        body={
            "name": "Q4 product calibration",
            "framework": LADDER,
            "filter": {"attributes": {"department": "product"}},
            "as_of": AS_OF,
        },
    )
    session = {"session_id": opened.json()["id"]}
    await rec.call("GET", "/v1/calibration/sessions", "Calibration sessions, newest first")
    await rec.call(
        "GET", "/v1/calibration/sessions/{session_id}", "The session and its snapshot", path=session
    )
    await rec.call(
        "GET",
        "/v1/calibration/sessions/{session_id}/rater-effects",
        "Rater effects when the snapshot was taken",
        path=session,
    )
    proposals = "/v1/calibration/sessions/{session_id}/proposals"
    ada = {
        "subject_ref": "ada",
        "competency": "stakeholder_management",
        "value": 4,
        "reason": "Led the pricing change through legal, sales and finance",
        "proposer": "Product leadership panel",
    }
    await rec.call(
        "POST",
        proposals,
        "The panel raises Ada's stakeholder management, with its reason",
        path=session,
        body=ada,
        alternatives={
            "text/csv": "subject_ref,competency,proposed_value,reason\n"
            "ada,stakeholder_management,4,Led the pricing change through legal and sales\n"
        },
    )
    await rec.call(
        "POST",
        proposals,
        "The same proposal again changes nothing (200)",
        path=session,
        body=ada,
    )
    await rec.call(
        "POST",
        proposals,
        "A proposal for Grace, withdrawn below",
        path=session,
        body={
            "subject_ref": "grace",
            "competency": "execution",
            "value": 2,
            "reason": "Two launches slipped this half",
        },
        record=False,
    )
    await rec.call(
        "DELETE",
        proposals + "/{subject_ref}/{competency}",
        "The panel withdraws the proposal for Grace",
        path={**session, "subject_ref": "grace", "competency": "execution"},
    )
    await rec.call("GET", proposals, "Proposals, standing and withdrawn", path=session)
    await rec.call(
        "GET",
        "/v1/calibration/sessions/{session_id}/grid",
        "The grid: people × competencies with the proposals (also as CSV)",
        path=session,
    )
    await rec.call(
        "POST",
        "/v1/calibration/sessions/{session_id}/close",
        "Close: the standing proposal becomes Ada's calibrated rating",
        path=session,
    )


XAPI = {"X-Experience-API-Version": "1.0.3"}
LMS = "https://lms.acme.example"
COURSE = "https://competency-ladder.dev/xapi/activities/product-management/system_design_course"


def _statement(statement_id: str, verb: str, ref: str, when: str) -> dict[str, Any]:
    return {
        "id": statement_id,
        "actor": {"account": {"homePage": LMS, "name": ref}},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}", "display": {"en-US": verb}},
        "object": {"id": COURSE, "objectType": "Activity"},
        "timestamp": when,
    }


async def _learning_records(rec: Recorder) -> None:
    await rec.call(
        "PUT",
        "/v1/learning-records/settings",
        "Acme's LMS accounts are people: account.name is the external_ref; quiz scores "
        "become external ratings",
        body={"account_home_pages": [LMS], "result_ratings": True},
    )
    await rec.call(
        "GET",
        "/v1/learning-records/settings",
        "The account homePages actors are mapped by, and whether scores become ratings",
    )
    await rec.call(
        "POST",
        "/v1/learning-records/mboxes/{ref}",
        "Statements naming Grace's work mailbox are about Grace",
        path={"ref": "grace"},
        body={"mbox": "mailto:grace@acme.example"},
    )
    await rec.call(
        "GET", "/v1/learning-records/mboxes/{ref}", "Grace's mailboxes", path={"ref": "grace"}
    )
    completed = _statement(
        "6b0c3c1e-6f35-4a39-9c61-2f0c1c6f4a10", "completed", "ada", "2026-11-20T16:00:00Z"
    )
    await rec.call(
        "POST",
        "/xapi/statements",
        "The LMS forwards Ada's completion of the system design course",
        headers=XAPI,
        body=completed,
    )
    failed = _statement(
        "0d9f9b7e-2b8c-4a53-9d0e-5c1b6e4f7a21", "failed", "linus", "2026-11-21T10:00:00Z"
    )
    await rec.call(
        "PUT",
        "/xapi/statements",
        "Linus failed the course's test: kept, nothing recorded",
        query={"statementId": failed["id"]},
        headers=XAPI,
        body=failed,
    )
    await rec.call(
        "GET",
        "/xapi/statements",
        "Ada's completion, as the service keeps it",
        query={"statementId": completed["id"]},
        headers=XAPI,
    )
    stranger = _statement(
        "4f1d2c3b-8a7e-4b6d-9c5e-3a2b1c0d9e8f", "completed", "emp-unknown", "2026-11-22T09:00:00Z"
    )
    await rec.call(
        "POST",
        "/xapi/statements",
        "A completion by someone the service does not know",
        headers=XAPI,
        body=[stranger],
        record=False,
    )
    await rec.call("GET", "/v1/learning-records/unmapped", "What could not be mapped yet")


async def _keys_and_audit(rec: Recorder) -> None:
    created = (
        await rec.call(
            "POST",
            "/v1/api-keys",
            "A key for the HR system's nightly sync, valid for a year",
            body={
                "name": "hris-sync",
                "scopes": ["subjects:write", "assessments:write"],
                "expires_at": "2027-11-01T00:00:00Z",
            },
        )
    ).json()
    await rec.call("GET", "/v1/api-keys", "The tenant's keys")
    await rec.call(
        "DELETE",
        "/v1/api-keys/{key_id}",
        "Revoke the HR system's key",
        path={"key_id": created["id"]},
    )
    await rec.call("GET", "/v1/audit-events", "The three latest changes", query={"limit": 3})


async def _webhooks_read(rec: Recorder) -> None:
    hooks = (await rec.call("GET", "/v1/webhooks", "Acme's webhook subscriptions")).json()["items"]
    hook = {"webhook_id": hooks[0]["id"]}
    await rec.call("GET", "/v1/webhooks/{webhook_id}", "The HR system's subscription", path=hook)
    await rec.call(
        "GET",
        "/v1/webhooks/{webhook_id}/deliveries",
        "The deliveries for Ada's self assessment, waiting for the dispatcher",
        path=hook,
        query={"limit": 3},
    )


async def _errors(rec: Recorder) -> None:
    await rec.call(
        "GET",
        "/v1/subjects/{ref}/score",
        "No API key",
        path={"ref": "ada"},
        authenticated=False,
        expect=401,
    )
    await rec.call(
        "GET",
        "/v1/subjects/{ref}/score",
        "A subject that is not registered",
        path={"ref": "grace-h"},
        expect=404,
    )
    await rec.call(
        "GET",
        "/v1/frameworks/{key}",
        "A framework that does not exist",
        path={"key": "acme-sales"},
        expect=404,
    )
    await rec.call(
        "POST",
        "/v1/subjects",
        "An external_ref with a space",
        body={"external_ref": "ada byron", "track": "management"},
        expect=422,
    )
    await rec.call(
        "POST",
        "/v1/assessments",
        "A competency the ladder does not have and a value off its scale",
        body={
            "subject_ref": "ada",
            "framework": LADDER,
            "rater_ref": "mgr-17",
            "rater_role": "manager",
            "assessed_at": "2026-10-01T09:00:00Z",
            "ratings": [
                {"competency": "negotiation", "proficiency": 3},
                {"competency": "execution", "proficiency": 7},
            ],
        },
        expect=422,
    )
    broken = acme_document()
    broken["key"] = "acme-sales"
    broken["levels"][1]["rank"] = 2
    broken["competencies"][0]["expectations"]["staff_pm"] = {"required": 4}
    await rec.call(
        "POST",
        "/v1/frameworks",
        "A ladder whose parts do not fit together",
        body=broken,
        expect=422,
    )


async def _cleanup(rec: Recorder) -> None:
    await rec.call(
        "DELETE",
        "/v1/subjects/{ref}",
        "Erase Linus and everything about him",
        path={"ref": "linus"},
    )
    hooks = (await rec.call("GET", "/v1/webhooks", "", record=False)).json()["items"]
    await rec.call(
        "DELETE",
        "/v1/webhooks/{webhook_id}",
        "Stop the deliveries to the HR system",
        path={"webhook_id": hooks[0]["id"]},
    )


# --- turning the recording into examples ---------------------------------------------------


def _item_id(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for field in ("key", "competency", "level"):
            if isinstance(item.get(field), str):
                return item[field]
    return None


def _pick(items: list[Any]) -> list[Any]:
    """At most MAX_ITEMS items, those about FOCUS first, in their original order."""
    ranked = sorted(range(len(items)), key=lambda i: (_item_id(items[i]) not in FOCUS, i))
    return [items[i] for i in sorted(ranked[:MAX_ITEMS])]


def _trim_heatmap(heatmap: dict[str, Any]) -> dict[str, Any]:
    columns = [i for i, c in enumerate(heatmap["competencies"]) if c in FOCUS][:MAX_ITEMS]
    rows = list(range(len(heatmap["subject_refs"])))[:MAX_ITEMS]
    return {
        "competencies": [heatmap["competencies"][i] for i in columns],
        "subject_refs": [heatmap["subject_refs"][r] for r in rows],
        "values": [[heatmap["values"][r][i] for i in columns] for r in rows],
    }


def trim(value: Any, key: str | None = None) -> Any:
    """Cut long lists of a scoring answer to the items about FOCUS; adds nothing."""
    if isinstance(value, dict):
        if key == "heatmap":
            return _trim_heatmap(value)
        out = {k: trim(v, k) for k, v in value.items()}
        if key == "contributions":
            out = {k: v for k, v in out.items() if k in FOCUS}
        return out
    if isinstance(value, list):
        items = [trim(v) for v in value]
        if key in KEEP_WHOLE or len(items) <= MAX_ITEMS:
            return items
        return _pick(items)
    return value


_PLACEHOLDER_PATTERN = re.compile(
    rf"(?P<token>\b{KEY_PATTERN}(?![A-Za-z0-9_-]))"
    r"|(?P<whsec>\bwhsec_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-]))"
    r"|(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)"
    # An id in an ETag (`"<hex>.<revision>"`) or an API key.
    r"|(?P<hex>(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z]))"
)


def _uuids(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _uuids(v)
    elif isinstance(value, list):
        for v in value:
            yield from _uuids(v)
    elif isinstance(value, str):
        for match in _PLACEHOLDER_PATTERN.finditer(value):
            if match["uuid"]:
                yield match["uuid"]


def _decode_cursor(cursor: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def _encode_cursor(values: Any) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Placeholders:
    """Stable stand-ins for what is random in a run: ids, API keys and webhook secrets.

    Ids are numbered in order of first appearance (operations and keys sorted), so the same
    recording always gets the same placeholders. Ids that are the same on every installation
    (the built-in ladder's CASE identifiers) are kept.
    """

    def __init__(self, stable_ids: set[str]) -> None:
        self.stable_ids = stable_ids
        self.ids: dict[uuid.UUID, uuid.UUID] = {}
        self.secrets = 0

    def apply(self, value: Any) -> Any:
        """The value with every random id, key and secret replaced; cursors re-encoded."""
        if isinstance(value, dict):
            out = {}
            for k in sorted(value):
                if k == "next_cursor" and isinstance(value[k], str):
                    out[k] = _encode_cursor(self.apply(_decode_cursor(value[k])))
                else:
                    out[self.text(k)] = self.apply(value[k])
            return out
        if isinstance(value, list):
            return [self.apply(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def text(self, text: str) -> str:
        """One string with its ids, keys and secrets replaced."""
        return _PLACEHOLDER_PATTERN.sub(self._replace, text)

    def _id(self, real: uuid.UUID) -> uuid.UUID:
        if str(real) in self.stable_ids:
            return real
        if real not in self.ids:
            self.ids[real] = uuid.uuid5(PLACEHOLDER_NAMESPACE, str(len(self.ids)))
        return self.ids[real]

    def _secret(self) -> str:
        # An obvious placeholder: a realistic-looking secret in the docs trips secret scanners.
        self.secrets += 1
        return f"EXAMPLE-secret-{self.secrets}-shown-once-not-a-real-key"

    def _replace(self, match: re.Match[str]) -> str:
        if match["token"]:
            key_id = self._id(uuid.UUID(hex=match["id"]))
            return format_token(match["prefix"], key_id, self._secret())
        if match["whsec"]:
            return f"whsec_{self._secret()}"
        if match["uuid"]:
            return str(self._id(uuid.UUID(match["uuid"])))
        return self._id(uuid.UUID(hex=match["hex"])).hex


def finish(recorded: dict[str, Any]) -> dict[str, Any]:
    """Trim the scoring answers and put placeholders in: the content of the examples file."""
    operations = copy.deepcopy(recorded["operations"])
    for key in TRIMMED:
        for media in operations[key]["responses"].values():
            for example in media.values():
                if isinstance(example["value"], dict):
                    example["value"] = trim(example["value"])
    placeholders = Placeholders(set(recorded["stable_ids"]))
    return dict(placeholders.apply(operations))


def write_examples(path: Path = EXAMPLES_FILE) -> int:
    """Run the scenario on a temporary database and write the examples file; operations recorded."""
    with tempfile.TemporaryDirectory(prefix="ladder-examples-") as tmp:
        settings = Settings(
            environment="development",
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'examples.db'}",
            load_builtin_frameworks=False,
            api_key_prefix=DEFAULT_KEY_PREFIX,
            dev_api_key_file=Path(tmp) / "dev-api-key",
            webhooks_enabled=False,
            # No DNS lookup of the example receiver's host: the run stays off the network.
            webhooks_allow_private_targets=True,
            rate_limit_per_minute=0,
            public_base_url=BASE_URL,  # CASE URIs name the example host, not localhost
        )
        migrate(settings)
        recorded = asyncio.run(record_examples(settings))
    operations = finish(recorded)
    path.write_text(json.dumps(operations, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return len(operations)
