"""Deny by default: every route the app has, found by introspection, demands a key and a scope.

A route added later is picked up automatically: it must either be on the short public list
(health probes and docs) or answer 401 without a valid key and 403 without its scope.
"""

import uuid
from datetime import timedelta

import httpx
import pytest

from app.auth.keys import DEFAULT_KEY_PREFIX, format_token
from app.models import utcnow
from tests.conftest import Tenant
from tests.security.support import (
    NON_ADMIN_SCOPES,
    PROBLEM,
    PUBLIC_MOUNTS,
    PUBLIC_PATHS,
    SCOPE_BY_DEPENDENCY,
    Endpoint,
    bearer,
    call,
    expire_key,
    key_id_of,
    plausible_path_values,
    revoke,
    route_app,
    route_table,
)

pytestmark = pytest.mark.anyio

TABLE = route_table(route_app())
ENDPOINTS = TABLE.protected
BODY_ENDPOINTS = [e for e in ENDPOINTS if e.has_body]

# Credentials that must never get past authentication, whatever the route.
UNKNOWN_KEY = format_token(DEFAULT_KEY_PREFIX, uuid.uuid4(), "A" * 43)
BAD_AUTHORIZATION: dict[str, str | None] = {
    "no header": None,
    "empty bearer": "Bearer ",
    "bearer without token": "Bearer",
    "malformed token": "Bearer not-a-key",
    "wrong scheme": "Basic dXNlcjpwYXNzd29yZA==",
    "unknown key": f"Bearer {UNKNOWN_KEY}",
    "id only": f"Bearer {DEFAULT_KEY_PREFIX}_{uuid.uuid4().hex}",
}


def _ids(endpoints: list[Endpoint]) -> list[str]:
    return [e.id for e in endpoints]


def _assert_problem(r: httpx.Response, status: int, what: str) -> None:
    assert r.status_code == status, f"{what}: {r.status_code} {r.text[:300]}"
    assert r.headers["content-type"] == PROBLEM, what
    assert r.json()["status"] == status, what


def test_the_app_has_protected_routes_to_check() -> None:
    # Guards the introspection itself: if it finds nothing, every test below passes vacuously.
    paths = {e.path for e in ENDPOINTS}
    for expected in ("/v1/subjects/{ref}", "/v1/assessments", "/v1/api-keys", "/v1/audit-events"):
        assert expected in paths
    assert len(ENDPOINTS) >= 20


def test_every_route_is_public_or_declares_a_known_scope() -> None:
    for endpoint in ENDPOINTS:
        assert endpoint.scope_dependencies, f"{endpoint.id} has no scoped() dependency"
        unknown = set(endpoint.scope_dependencies) - set(SCOPE_BY_DEPENDENCY)
        assert not unknown, f"{endpoint.id} depends on unknown scope(s) {unknown}"
    for path, scope_deps in TABLE.public_api:
        assert path in PUBLIC_PATHS
        assert not scope_deps, f"public route {path} unexpectedly demands a scope"
    # Plain (non-FastAPI) routes and mounts bypass dependencies, so only known ones may exist.
    for path in TABLE.other:
        assert path in PUBLIC_PATHS | PUBLIC_MOUNTS, f"{path} is served without authentication"


async def test_introspection_sees_the_app_under_test(app: object) -> None:
    assert _ids(route_table(app).protected) == _ids(ENDPOINTS)  # type: ignore[arg-type]


async def test_public_routes_answer_without_a_key(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"):
        r = await client.get(path)
        assert r.status_code == 200, path
    r = await client.get("/_static/swagger-ui.css")
    assert r.status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
async def test_route_refuses_missing_and_malformed_keys_with_401(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    values = plausible_path_values(endpoint)
    for label, authorization in BAD_AUTHORIZATION.items():
        headers = {} if authorization is None else {"Authorization": authorization}
        r = await call(client, endpoint, values, headers)
        _assert_problem(r, 401, f"{endpoint.id} with {label}")


async def test_revoked_expired_and_tampered_keys_are_refused_everywhere(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    revoked = await tenant_a.key("admin")
    await revoke(client, tenant_a, revoked)
    expired = await tenant_a.key("admin", expires_at=utcnow() + timedelta(hours=1))
    await expire_key(tenant_a, key_id_of(expired))
    good = tenant_a.admin_key
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    credentials = {
        "revoked admin key": bearer(revoked),
        "expired admin key": bearer(expired),
        "tampered secret": bearer(tampered),
        "token without scheme": {"Authorization": good},
        "token as basic": {"Authorization": f"Basic {good}"},
    }
    failures = []
    for endpoint in ENDPOINTS:
        values = plausible_path_values(endpoint)
        for label, headers in credentials.items():
            r = await call(client, endpoint, values, headers)
            if r.status_code != 401 or r.headers["content-type"] != PROBLEM:
                failures.append(f"{endpoint.id} with {label}: {r.status_code}")
    assert not failures, "\n".join(failures)
    # The same admin key, intact, still works: the refusals above are about the key alone.
    r = await client.get("/v1/api-keys", headers=bearer(good))
    assert r.status_code == 200


async def test_401_tells_the_client_to_send_a_bearer_key(client: httpx.AsyncClient) -> None:
    failures = []
    for endpoint in ENDPOINTS:
        for headers in ({}, {"Authorization": f"Bearer {UNKNOWN_KEY}"}):
            r = await call(client, endpoint, plausible_path_values(endpoint), headers)
            challenge = r.headers.get("www-authenticate", "")
            if r.status_code != 401 or not challenge.lower().startswith("bearer"):
                failures.append(f"{endpoint.id}: {r.status_code} WWW-Authenticate={challenge!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=_ids(BODY_ENDPOINTS))
async def test_unparsable_body_without_a_key_is_401_not_422(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    # Authentication comes first: an anonymous caller learns nothing about body parsing.
    r = await call(client, endpoint, plausible_path_values(endpoint), {}, content=b'{"not": json')
    _assert_problem(r, 401, endpoint.id)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
async def test_key_without_the_route_scope_gets_403(
    client: httpx.AsyncClient, tenant_a: Tenant, endpoint: Endpoint
) -> None:
    values = plausible_path_values(endpoint)
    for needed in sorted(endpoint.scopes):
        others = sorted(NON_ADMIN_SCOPES - {needed})
        token = await tenant_a.key(*others)
        r = await call(client, endpoint, values, bearer(token))
        _assert_problem(r, 403, f"{endpoint.id} without {needed}")
        assert needed in r.json()["detail"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
async def test_route_scope_is_enough_and_admin_is_everything(
    client: httpx.AsyncClient, tenant_a: Tenant, endpoint: Endpoint
) -> None:
    # The positive control of the two tests above: the scopes found by introspection are the
    # ones the route really checks (whatever else it answers, it is not 401 or 403).
    values = plausible_path_values(endpoint)
    token = await tenant_a.key(*sorted(endpoint.scopes))
    for label, headers in (("its scopes", bearer(token)), ("admin", tenant_a.headers)):
        r = await call(client, endpoint, values, headers)
        assert r.status_code not in (401, 403), f"{endpoint.id} with {label}: {r.text[:300]}"
        assert r.status_code < 500, f"{endpoint.id} with {label}: {r.text[:300]}"


def test_openapi_documents_the_key_and_its_refusals_on_every_protected_operation() -> None:
    schema = route_app().openapi()
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    documented = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path in PUBLIC_PATHS:
                assert not operation.get("security"), path
                continue
            documented.add(f"{method.upper()} {path}")
            assert {"ApiKey": []} in operation.get("security", []), f"{method} {path}"
            assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
    assert documented == set(_ids(ENDPOINTS))
