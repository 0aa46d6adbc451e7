"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis), on a
store of the caller's choosing: ``tests/test_fuzz.py`` runs it on Postgres,
``tests/test_fuzz_sqlite.py`` on the embedded SQLite file a new user starts with.

Every operation gets valid and invalid requests (examples, coverage and fuzzing phases,
positive and negative data) with an admin key, and every built-in check runs on each answer
(and a write answered 4xx must leave no audit event, so no change, behind):
no 5xx, documented status codes, content types, headers and bodies, invalid input refused,
auth enforced (``ignored_auth`` replays each authenticated success without and with a bad
key). A stateful test then chains operations along the document's OpenAPI links (create, then
read, update, publish, erase), where ``use_after_free`` and ``ensure_resource_availability``
apply.

The app runs in-process (ASGI, no network) on a database of its own: the fuzzer commits
thousands of rows, so it gets a fresh database instead of the per-test rolled-back transaction.

The schema is loaded at import time, not through ``schemathesis.pytest.from_fixture``: that
loader reads ``Node._nodeid``, which pytest 9 no longer has. So each test module fixes its
database at import and a module fixture creates it before the first request (the app connects
lazily); the API key comes from an auth provider that reads it when a request is made.
"""

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from requests.structures import CaseInsensitiveDict

from app.auth import service as auth_service
from app.cli import migrate
from app.config import Settings
from app.db import create_engine, make_sessionmaker
from app.main import create_app
from tests.conftest import _load_builtin

# Per operation, for the fuzzing phase; examples and coverage cases come on top of these.
MAX_EXAMPLES = 50
STATEFUL_SCENARIOS = 100
STATEFUL_MAX_STEPS = 10

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


def settings_for(database_url: str) -> Settings:
    """The app's settings for a fuzz run on this database."""
    return Settings(
        environment="test",
        database_url=database_url,
        load_builtin_frameworks=False,
        # Deliveries would leave the process for whatever URLs the fuzzer registers, and the
        # dispatcher polls the database from startup, before the fixture has created it.
        webhooks_enabled=False,
        # Subscribing resolves the target's host name to refuse private addresses: with this
        # on, the fuzzer's random hosts are not looked up in DNS, so the run stays off the
        # network.
        webhooks_allow_private_targets=True,
    )


def _config(seed: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
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


WRITES = {"POST", "PUT", "PATCH", "DELETE"}

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


class Fuzzer:
    """The app on one database, its schema for schemathesis, and the admin key requests carry
    (the fuzz tenant's, or the current stateful scenario's own)."""

    def __init__(self, settings: Settings, seed: int) -> None:
        self.settings = settings
        self.seed = seed
        self.token = ""
        self.schema = schemathesis.openapi.from_asgi(
            "/openapi.json", create_app(settings), config=_config(seed)
        )
        fuzzer = self

        @self.schema.auth(refresh_interval=None)
        class AdminKey:
            """Explicit auth: ``ignored_auth`` replays authenticated successes without it and
            with a bad key."""

            def get(self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext) -> str:
                return fuzzer.token

            def set(
                self, case: schemathesis.Case[Any], data: str, ctx: schemathesis.AuthContext
            ) -> None:
                headers = CaseInsensitiveDict(case.headers or {})
                headers["Authorization"] = f"Bearer {data}"
                case.headers = headers

    def prepare(self, migration_url: str, migrated: Callable[[], None] = lambda: None) -> None:
        """Migrate the (new, empty) database, call ``migrated`` (grants, say), load the built-in
        ladder and make the fuzz tenant."""
        migrate(Settings(database_url=migration_url))
        migrated()
        asyncio.run(_load_builtin(migration_url))
        self.token = asyncio.run(self._new_tenant())

    async def _new_tenant(self) -> str:
        """A fresh tenant; returns its admin key."""
        engine = create_engine(self.settings)
        try:
            async with make_sessionmaker(engine)() as session:
                slug = f"fuzz-{uuid.uuid4().hex[:12]}"
                _, token = await auth_service.bootstrap_tenant(
                    session, slug, prefix=self.settings.api_key_prefix
                )
                await session.commit()
                return token
        finally:
            await engine.dispose()

    def newest_audit_event(self) -> str | None:
        """The id of the fuzz tenant's newest audit event: every change the API makes records
        one."""
        case = self.schema["/v1/audit-events"]["GET"].Case(
            query={"limit": 1}, headers={"Authorization": f"Bearer {self.token}"}
        )
        response = case.call()
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        return str(items[0]["id"]) if items else None

    def survives(self, case: schemathesis.Case[Any]) -> None:
        """One generated request passes every check; a refused write changed nothing."""
        writes = case.method.upper() in WRITES
        before = self.newest_audit_event() if writes else None
        response = case.call_and_validate()
        if writes and 400 <= response.status_code < 500:
            # A refused request changes nothing: no change was recorded while it ran.
            assert self.newest_audit_event() == before, (
                f"{case.method} {case.path} answered {response.status_code} and changed something"
            )

    def undecodable(self, path: str, media_type: str, body: bytes) -> None:
        """A body no generator draws is refused with a problem 422 before any use case."""
        case = self.schema[path]["POST"].Case(
            body=body,
            media_type=media_type,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": media_type},
        )
        response = case.call()
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == ["application/problem+json"]

    def linked_sequences(self) -> None:
        """Chains of operations along the document's links keep their promises."""
        paths = self.schema.raw_schema["paths"]
        links = paths["/v1/subjects"]["post"]["responses"]["201"].get("links")
        assert links, "the served OpenAPI document declares no links"
        fuzzer = self

        # The machine's class is built from the document at run time: no static type to check.
        class LinkedScenarios(self.schema.as_state_machine()):  # type: ignore[misc]
            def setup(self) -> None:
                # Each scenario starts in an empty tenant, so a replayed scenario (Hypothesis
                # replays a failing one to shrink and report it) meets the same state, and the
                # same answers.
                fuzzer.token = asyncio.run(fuzzer._new_tenant())

        hypothesis.seed(self.seed)(LinkedScenarios).run(
            settings=hypothesis.settings(
                max_examples=STATEFUL_SCENARIOS,
                stateful_step_count=STATEFUL_MAX_STEPS,
                deadline=None,
                database=None,
            )
        )


def suite(fuzzer: Fuzzer) -> tuple[Callable[..., None], ...]:
    """The fuzz tests of one store, for its module to name (pytest collects them there)."""

    @fuzzer.schema.parametrize()
    def test_every_operation_survives_fuzzing(case: schemathesis.Case[Any]) -> None:
        fuzzer.survives(case)

    @pytest.mark.parametrize(("path", "media_type", "body"), MALFORMED_BODIES)
    def test_undecodable_bodies_get_a_problem_422(path: str, media_type: str, body: bytes) -> None:
        fuzzer.undecodable(path, media_type, body)

    def test_linked_sequences_keep_their_promises() -> None:
        fuzzer.linked_sequences()

    return (
        test_every_operation_survives_fuzzing,
        test_undecodable_bodies_get_a_problem_422,
        test_linked_sequences_keep_their_promises,
    )
