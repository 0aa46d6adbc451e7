"""Shared helpers of the security suite: the app's routes, plausible inputs, seeded tenants.

Routes are discovered from the application itself, so a route added later is covered by the
authentication, scope and isolation checks without touching this suite.
"""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select

from app.auth.keys import ADMIN, DEFAULT_KEY_PREFIX, SCOPES, format_token, parse_token
from app.config import Settings
from app.db import bind_tenant
from app.interop.case import CaseIds
from app.main import create_app
from app.models import ApiKey, utcnow
from tests.conftest import Tenant
from tests.factories import small_framework

PROBLEM = "application/problem+json"
EVIDENCE = "SECRET-EVIDENCE-123"
DISPLAY_NAME = "Ada Secretname"
ATTRIBUTE_VALUE = "team-secret-growth"

# Reachable without an API key. Everything else must demand a key and a scope. (/metrics asks
# for its own METRICS_TOKEN instead: tests/observability.)
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/metrics"})
PUBLIC_MOUNTS = frozenset({"/_static"})
SCOPE_BY_DEPENDENCY = {f"scope_{s.replace(':', '_')}": s for s in SCOPES}
NON_ADMIN_SCOPES = frozenset(SCOPES) - {ADMIN}


@dataclass(frozen=True)
class Endpoint:
    """One method of one protected route, as the app declares it."""

    method: str
    path: str
    path_params: tuple[tuple[str, Any], ...]
    has_body: bool
    scope_dependencies: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(SCOPE_BY_DEPENDENCY[name] for name in self.scope_dependencies)

    def url(self, values: dict[str, str]) -> str:
        return self.path.format(**values)


def route_app() -> FastAPI:
    """An app built like the service's, only to read its routes (never started)."""
    return create_app(
        Settings(
            environment="test",
            database_url="sqlite+aiosqlite:///:memory:",
            load_builtin_frameworks=False,
            docs_enabled=True,
        )
    )


def _flat_routes(app: FastAPI) -> Iterator[tuple[Any, Any]]:
    """(declared route, effective route) pairs, looking through included routers."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI versions that copy routes into app.routes
        for route in app.routes:
            yield route, route
        return
    for context in iter_route_contexts(app.routes):
        yield context.original_route, context


def _scope_dependency_names(dependant: Any) -> list[str]:
    names: list[str] = []
    for dep in dependant.dependencies:
        name = getattr(dep.call, "__name__", "")
        if name.startswith("scope_"):
            names.append(name)
        names += _scope_dependency_names(dep)
    return names


@dataclass
class RouteTable:
    protected: list[Endpoint] = field(default_factory=list)
    public_api: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # plain Starlette routes and mounts


def route_table(app: FastAPI) -> RouteTable:
    table = RouteTable()
    for original, effective in _flat_routes(app):
        if not isinstance(original, APIRoute):
            table.other.append(effective.path)
            continue
        # path_format drops converters: /v1/assessments/{assessment_id:uuid} -> {assessment_id}
        path = effective.path_format
        dependant = effective.dependant
        scope_deps = tuple(_scope_dependency_names(dependant))
        if path in PUBLIC_PATHS:
            table.public_api.append((path, scope_deps))
            continue
        params = tuple((p.name, p.field_info.annotation) for p in dependant.path_params)
        for method in sorted(effective.methods or ()):
            table.protected.append(
                Endpoint(
                    method=method,
                    path=path,
                    path_params=params,
                    has_body=effective.body_field is not None,
                    scope_dependencies=scope_deps,
                )
            )
    return table


PLAUSIBLE_BY_NAME = {"ref": "emp-1", "key": "product-management", "version": "1"}


def plausible_path_values(endpoint: Endpoint) -> dict[str, str]:
    """Values that route and validate, so only authentication or authorization can refuse."""
    values = {}
    for name, annotation in endpoint.path_params:
        if annotation is uuid.UUID:
            values[name] = str(uuid.uuid4())
        elif annotation is int:
            values[name] = "1"
        else:
            values[name] = PLAUSIBLE_BY_NAME.get(name, "x1")
    return values


async def call(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    values: dict[str, str],
    headers: dict[str, str],
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """Send one request to an endpoint; write methods get a JSON body (``{}`` by default)."""
    kwargs: dict[str, Any] = {"headers": dict(headers), "params": params}
    if content is not None:
        kwargs["content"] = content
        kwargs["headers"]["content-type"] = "application/json"
    elif endpoint.method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {} if body is None else body
    return await client.request(endpoint.method, endpoint.url(values), **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _parts(token: str) -> tuple[uuid.UUID, str]:
    parsed = parse_token(token, DEFAULT_KEY_PREFIX)
    assert parsed is not None, token
    return parsed


def key_id_of(token: str) -> uuid.UUID:
    return _parts(token)[0]


def secret_of(token: str) -> str:
    return _parts(token)[1]


def with_secret(token: str, secret: str) -> str:
    """The same prefix and key id with another (well-formed) secret."""
    return format_token(DEFAULT_KEY_PREFIX, key_id_of(token), secret)


async def expire_key(tenant: Tenant, key_id: uuid.UUID) -> None:
    """Move a key's expiry into the past, as the owning tenant (RLS lets only it write)."""
    async with tenant.sessionmaker() as session:
        await session.connection()
        await bind_tenant(session, tenant.id)
        key = (await session.exec(select(ApiKey).where(ApiKey.id == key_id))).one()
        key.expires_at = utcnow() - timedelta(seconds=1)
        session.add(key)
        await session.commit()


async def revoke(client: httpx.AsyncClient, tenant: Tenant, token: str) -> None:
    r = await client.delete(f"/v1/api-keys/{key_id_of(token)}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None


async def as_tenant(connection: AsyncConnection, tenant_id: uuid.UUID | None) -> None:
    """Postgres: name the tenant of the current transaction ('' means none)."""
    await connection.execute(
        text("SELECT set_config('app.tenant_id', :t, true)"),
        {"t": "" if tenant_id is None else str(tenant_id)},
    )


def same_uuid(value: Any, expected: uuid.UUID) -> bool:
    """Raw SQL returns UUIDs as objects (Postgres) or hex strings (SQLite)."""
    try:
        return uuid.UUID(str(value)) == expected
    except ValueError:
        return False


def dump(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def subject_body(ref: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_ref": ref,
        "display_name": DISPLAY_NAME,
        "track": "ic",
        "current_level": "junior",
        "attributes": {"team": ATTRIBUTE_VALUE},
    }
    body.update(changes)
    return body


def assessment_body(
    ref: str,
    framework: str = "product-management",
    *,
    competency: str = "execution",
    proficiency: int = 3,
    when: str = "2026-09-01T09:00:00Z",
    evidence: str = EVIDENCE,
    version: int | None = None,
) -> dict[str, Any]:
    fw: dict[str, Any] = {"key": framework}
    if version is not None:
        fw["version"] = version
    return {
        "subject_ref": ref,
        "framework": fw,
        "rater_ref": "mgr-1",
        "rater_role": "manager",
        "assessed_at": when,
        "ratings": [{"competency": competency, "proficiency": proficiency, "evidence": evidence}],
    }


@dataclass
class World:
    """What one tenant owns after ``seed``: every kind of object, with known ids."""

    tenant: Tenant
    subject_ref: str
    subject_id: str
    framework_key: str
    assessment_ids: list[str]
    key_id: str
    key_token: str
    webhook_id: str
    session_id: str

    @property
    def path_values(self) -> dict[str, str]:
        """This tenant's real identifiers, by path parameter name."""
        return {
            "ref": self.subject_ref,
            "key": self.framework_key,
            "version": "1",
            "assessment_id": self.assessment_ids[0],
            "key_id": self.key_id,
            "webhook_id": self.webhook_id,
            "session_id": self.session_id,
            "subject_ref": self.subject_ref,
            "competency": "coding",
            "sourcedId": str(
                CaseIds(owner=self.tenant.id, key=self.framework_key, version=1).document
            ),
        }


# Loopback's discard port: nothing listens, and tests never send traffic off this machine.
# Private targets are allowed for these tests only (the delivery worker runs in the lifespan,
# which the test client does not start, so nothing is sent at all).
WEBHOOK_URL = "http://127.0.0.1:9/ladder-hook"


async def subscribe_webhook(client: httpx.AsyncClient, tenant: Tenant) -> str:
    app = client._transport.app  # type: ignore[attr-defined]
    app.state.settings = app.state.settings.model_copy(
        update={"webhooks_allow_private_targets": True}
    )
    r = await client.post(
        "/v1/webhooks",
        json={"url": WEBHOOK_URL, "events": ["assessment.created", "readiness.changed"]},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def seed(client: httpx.AsyncClient, tenant: Tenant, ref: str = "emp-1") -> World:
    """A webhook, a private published framework, a subject with two assessments (with
    evidence), a completed activity, a calibration session with a proposal about them and a
    non-admin key, all made over HTTP by the admin."""
    h = tenant.headers
    webhook_id = await subscribe_webhook(client, tenant)
    r = await client.post(
        "/v1/frameworks", json=small_framework(), params={"publish": "true"}, headers=h
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/subjects", json=subject_body(ref), headers={**h, "Idempotency-Key": f"seed-{ref}"}
    )
    assert r.status_code == 201, r.text
    subject_id = r.json()["id"]
    ids = []
    for body in (
        assessment_body(ref),
        assessment_body(
            ref, "eng-ladder", competency="coding", proficiency=2, when="2026-10-01T09:00:00Z"
        ),
    ):
        r = await client.post("/v1/assessments", json=body, headers=h)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await client.post(
        f"/v1/subjects/{ref}/completed-activities",
        json={"activity": "pairing", "completed_at": "2026-10-02T00:00:00Z"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    # A calibration session over the person, with a proposal about them (its reason personal).
    r = await client.post(
        "/v1/calibration/sessions",
        json={"name": "Q4", "framework": {"key": "eng-ladder"}, "subject_refs": [ref]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    session_id = r.json()["id"]
    proposal = {"subject_ref": ref, "competency": "coding", "value": 3, "reason": EVIDENCE}
    r = await client.post(
        f"/v1/calibration/sessions/{session_id}/proposals", json=proposal, headers=h
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/api-keys", json={"name": "hris-sync", "scopes": ["subjects:read"]}, headers=h
    )
    assert r.status_code == 201, r.text
    return World(
        tenant=tenant,
        subject_ref=ref,
        subject_id=subject_id,
        framework_key="eng-ladder",
        assessment_ids=ids,
        key_id=r.json()["id"],
        key_token=r.json()["key"],
        webhook_id=webhook_id,
        session_id=session_id,
    )


async def all_audit_events(
    client: httpx.AsyncClient, tenant: Tenant, **filters: Any
) -> list[dict[str, Any]]:
    """Every audit event the tenant's admin can list, following cursors."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**filters, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/audit-events", params=params, headers=tenant.headers)
        assert r.status_code == 200, r.text
        events += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return events


async def table_names(connection: AsyncConnection) -> list[str]:
    if connection.dialect.name == "postgresql":
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return sorted((await connection.execute(text(query))).scalars())


async def dump_store(
    connection: AsyncConnection, tenant_id: uuid.UUID | None = None
) -> dict[str, str]:
    """Every row of every table as text, keyed by table; only one tenant's rows if given."""
    out = {}
    for table in await table_names(connection):
        rows = (await connection.execute(text(f'SELECT * FROM "{table}"'))).mappings().all()
        if tenant_id is not None:
            rows = [r for r in rows if "tenant_id" not in r or same_uuid(r["tenant_id"], tenant_id)]
        out[table] = "\n".join(repr(dict(r)) for r in rows)
    return out
