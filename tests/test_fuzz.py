"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

Every operation gets valid and invalid requests (examples, coverage and fuzzing phases,
positive and negative data) with an admin key, and every built-in check runs on each answer
(and a write answered 4xx must leave no audit event, so no change, behind):
no 5xx, documented status codes, content types, headers and bodies, invalid input refused,
auth enforced (``ignored_auth`` replays each authenticated success without and with a bad
key). A stateful test then chains operations along the document's OpenAPI links (create, then
read, update, publish, erase), where ``use_after_free`` and ``ensure_resource_availability``
apply.

The app runs in-process (ASGI, no network) on a Postgres database of its own, connected as
the harness's non-superuser role so row-level security stays on. The fuzzer commits thousands
of rows, so it gets a fresh database instead of the per-test rolled-back transaction.

The schema is loaded at import time, not through ``schemathesis.pytest.from_fixture``: that
loader reads ``Node._nodeid``, which pytest 9 no longer has. So the database name is fixed at
import and a module fixture creates the database before the first request (the app connects
lazily); the API key comes from an auth provider that reads it when a request is made.
"""

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from requests.structures import CaseInsensitiveDict
from sqlalchemy.engine import make_url

from app.auth import service as auth_service
from app.cli import migrate
from app.config import Settings
from app.db import create_engine, make_sessionmaker
from app.main import create_app
from tests.conftest import APP_ROLE, _admin_execute, _ensure_app_role, _load_builtin, admin_url

pytestmark = pytest.mark.postgres

SEED = 20_251_104
# Per operation, for the fuzzing phase; examples and coverage cases come on top of these.
MAX_EXAMPLES = 50
STATEFUL_SCENARIOS = 100
STATEFUL_MAX_STEPS = 10

_DATABASE = f"{make_url(admin_url()).database or 'ladder_test'}_fuzz_{uuid.uuid4().hex[:10]}"
_OWNER_URL = make_url(admin_url()).set(database=_DATABASE)
SETTINGS = Settings(
    environment="test",
    database_url=_OWNER_URL.set(username=APP_ROLE, password=None).render_as_string(
        hide_password=False
    ),
    load_builtin_frameworks=False,
    # Deliveries would leave the process for whatever URLs the fuzzer registers, and the
    # dispatcher polls the database from startup, before the fixture below has created it.
    webhooks_enabled=False,
    # Subscribing resolves the target's host name to refuse private addresses: with this on, the
    # fuzzer's random hosts are not looked up in DNS, so the run stays off the network.
    webhooks_allow_private_targets=True,
)

app = create_app(SETTINGS)
# Schemathesis' default answers to schema-valid data, plus 412, 422 and 428 (see below).
POSITIVE_DATA_STATUSES = [
    "2xx",
    "3xx",
    "401",
    "403",
    "404",
    "409",
    "412",
    "422",
    "428",
    "429",
    "5xx",
]

NEGATIVE_DATA_STATUSES = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # Positive and negative data; no example database, so a run depends on the seed only.
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": STATEFUL_MAX_STEPS},
        },
        "checks": {
            "enabled": True,
            # Schema-valid requests may still break rules JSON Schema cannot state: references
            # (unknown competency, level, track, subject), cross-field rules of a framework
            # (duplicate keys, rank collisions, emphasis sums), cursors the service did not
            # issue, an existing external_ref. Those are refused with 422 by design. An update
            # without If-Match gets 428 (the document declares it required) and one naming
            # another ETag 412. Refusals the document should have predicted are caught by
            # `schema_valid_input_passes_request_validation`.
            "positive_data_acceptance": {"expected-statuses": POSITIVE_DATA_STATUSES},
            # Schemathesis' default refusals plus 413: an array longer than its maxItems can
            # also be a body over the size limit, refused before validation, which is right.
            "negative_data_rejection": {"expected-statuses": NEGATIVE_DATA_STATUSES},
        },
        "operations": [
            {
                # `ensure_resource_availability` reads a 404 after a create as "the created
                # resource is gone" once every parameter came from the link; it does not count
                # the body. These bodies name another resource (what-if: a framework; clone: a
                # source version) that the fuzzer draws and that rightly 404s, while the linked
                # subject or framework is there. The check stays on everywhere else.
                "include-name": [
                    "POST /v1/subjects/{ref}/what-if",
                    "POST /v1/frameworks/{key}/clone",
                ],
                "checks": {"ensure_resource_availability": {"enabled": False}},
            },
            {
                # xAPI clients expect 400 for a statement breaking the specification's rules
                # beyond what the document states (one actor identifier, IRIs, zoned
                # timestamps) and for a missing X-Experience-API-Version header.
                "include-name": [
                    "POST /xapi/statements",
                    "PUT /xapi/statements",
                    "GET /xapi/statements",
                ],
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": [*POSITIVE_DATA_STATUSES, "400"]
                    }
                },
            },
        ],
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


class BearerKey:
    """The admin key requests carry: the fuzz tenant's, or the current scenario's own."""

    token = ""


@schema.auth(refresh_interval=None)
class AdminKey:
    """Explicit auth: ``ignored_auth`` replays authenticated successes without it and with a bad key."""

    def get(self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext) -> str:
        return BearerKey.token

    def set(self, case: schemathesis.Case[Any], data: str, ctx: schemathesis.AuthContext) -> None:
        headers = CaseInsensitiveDict(case.headers or {})
        headers["Authorization"] = f"Bearer {data}"
        case.headers = headers


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """NDJSON is documented as text, so generated text goes out as it is.

    A value that is not text (negative data) has no NDJSON spelling: as JSON it would be text
    again. It goes out as bytes that are not UTF-8, the wire's way of not being a string.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return b"\xff" + json.dumps(value, default=str).encode()


# The detail of the 422s raised when a request fails its models, before any use case runs
# (app.errors for FastAPI's request validation, app.frameworks.document for framework files).
MODEL_REFUSAL = re.compile(r"^The (request|framework file) has \d+ invalid field\(s\)\.$")


@schemathesis.check
def schema_valid_input_passes_request_validation(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Schema-valid input must get past the request models the document was generated from."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    # YAML framework files and NDJSON streams are documented as text: their shape is beyond
    # the document.
    if case.media_type is not None and case.media_type != "application/json":
        return None
    if response.status_code != 422:
        return None
    detail = response.json().get("detail") or ""
    assert not MODEL_REFUSAL.match(detail), (
        f"The request models refuse input the OpenAPI document allows: {response.text[:2000]}"
    )
    return None


async def _new_tenant() -> str:
    """A fresh tenant; returns its admin key."""
    engine = create_engine(SETTINGS)
    try:
        async with make_sessionmaker(engine)() as session:
            slug = f"fuzz-{uuid.uuid4().hex[:12]}"
            _, token = await auth_service.bootstrap_tenant(
                session, slug, prefix=SETTINGS.api_key_prefix
            )
            await session.commit()
            return token
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", autouse=True)
def fuzz_database() -> Iterator[None]:
    """A fresh database built by the migrations, with the built-in ladder and a tenant."""
    owner_url = _OWNER_URL.render_as_string(hide_password=False)
    asyncio.run(_admin_execute([f'CREATE DATABASE "{_DATABASE}"']))
    try:
        migrate(Settings(database_url=owner_url))
        _ensure_app_role(_DATABASE)
        asyncio.run(_load_builtin(owner_url))
        BearerKey.token = asyncio.run(_new_tenant())
        yield
    finally:
        asyncio.run(_admin_execute([f'DROP DATABASE IF EXISTS "{_DATABASE}" WITH (FORCE)']))


WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def newest_audit_event() -> str | None:
    """The id of the fuzz tenant's newest audit event: every change the API makes records one."""
    case = schema["/v1/audit-events"]["GET"].Case(
        query={"limit": 1}, headers={"Authorization": f"Bearer {BearerKey.token}"}
    )
    response = case.call()
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    return str(items[0]["id"]) if items else None


@schema.parametrize()
def test_every_operation_survives_fuzzing(case: schemathesis.Case[Any]) -> None:
    writes = case.method.upper() in WRITES
    before = newest_audit_event() if writes else None
    response = case.call_and_validate()
    if writes and 400 <= response.status_code < 500:
        # A refused request changes nothing: no change was recorded while it ran.
        assert newest_audit_event() == before, (
            f"{case.method} {case.path} answered {response.status_code} and changed something"
        )


# Bodies no generator draws from the document, refused before any use case runs.
MALFORMED_BODIES = [
    ("/v1/subjects", "application/json", b"[" * 100_000),
    ("/v1/subjects", "application/json", b'{"external_ref": ' + b"9" * 100_000 + b"}"),
    ("/v1/subjects", "application/json", b'{"external_ref": "\xff"}'),
    ("/v1/frameworks/import", "application/json", b'{"key": ' + b"9" * 100_000 + b"}"),
    ("/v1/frameworks/import", "application/yaml", b"key: " + b"9" * 100_000),
    ("/v1/frameworks/import", "application/yaml", b"[" * 100_000),
    ("/v1/frameworks/import", "application/yaml", b"- " * 1_000 + b"x"),
]


@pytest.mark.parametrize(("path", "media_type", "body"), MALFORMED_BODIES)
def test_undecodable_bodies_get_a_problem_422(path: str, media_type: str, body: bytes) -> None:
    case = schema[path]["POST"].Case(
        body=body,
        media_type=media_type,
        headers={"Authorization": f"Bearer {BearerKey.token}", "Content-Type": media_type},
    )
    response = case.call()
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == ["application/problem+json"]


def test_linked_sequences_keep_their_promises() -> None:
    links = schema.raw_schema["paths"]["/v1/subjects"]["post"]["responses"]["201"].get("links")
    assert links, "the served OpenAPI document declares no links"

    # The machine's class is built from the document at run time: no static type to check.
    class LinkedScenarios(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Each scenario starts in an empty tenant, so a replayed scenario (Hypothesis replays
            # a failing one to shrink and report it) meets the same state, and the same answers.
            BearerKey.token = asyncio.run(_new_tenant())

    hypothesis.seed(SEED)(LinkedScenarios).run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_MAX_STEPS,
            deadline=None,
            database=None,
        )
    )
