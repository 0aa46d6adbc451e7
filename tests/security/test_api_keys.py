"""API keys: format, shown once, stored hashed, scoped, expiring, revocable."""

import hmac
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import keys
from app.models import utcnow
from tests.conftest import Database, Tenant
from tests.security.support import (
    PROBLEM,
    as_tenant,
    bearer,
    dump_store,
    expire_key,
    key_id_of,
    revoke,
    same_uuid,
    secret_of,
    with_secret,
)

pytestmark = pytest.mark.anyio

TOKEN_RE = re.compile(
    r"^(?P<prefix>[a-z]{2,8})_(?P<id>[0-9a-f]{32})_(?P<secret>[A-Za-z0-9_-]{43})$"
)


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post("/v1/api-keys", json={"name": "ci", **body}, headers=headers)


async def test_key_is_shown_once_in_the_documented_format(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    r = await _create(client, tenant_a.headers, scopes=["subjects:read", "subjects:read"])
    assert r.status_code == 201, r.text
    created = r.json()
    match = TOKEN_RE.match(created["key"])
    assert match, created["key"]
    assert uuid.UUID(hex=match["id"]) == uuid.UUID(created["id"])
    assert created["scopes"] == ["subjects:read"]
    assert created["revoked_at"] is None

    # Two keys never share a secret.
    other = (await _create(client, tenant_a.headers, scopes=["subjects:read"])).json()["key"]
    assert secret_of(other) != match["secret"]

    # Never again: the listing has metadata only.
    r = await client.get("/v1/api-keys", headers=tenant_a.headers)
    assert r.status_code == 200
    listed = next(k for k in r.json()["items"] if k["id"] == created["id"])
    assert "key" not in listed
    assert listed["scopes"] == ["subjects:read"]
    assert match["secret"] not in r.text
    assert created["key"] not in r.text


async def test_key_lifecycle_create_use_revoke(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    token = (await _create(client, tenant_a.headers, scopes=["subjects:read"])).json()["key"]
    assert (await client.get("/v1/subjects", headers=bearer(token))).status_code == 200
    # Lower-case scheme works too (RFC 7235: the scheme is case-insensitive).
    r = await client.get("/v1/subjects", headers={"Authorization": f"bearer {token}"})
    assert r.status_code == 200

    # The key holds only its scopes.
    r = await client.post("/v1/subjects", json={"external_ref": "x"}, headers=bearer(token))
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM

    r = await client.delete(f"/v1/api-keys/{key_id_of(token)}", headers=tenant_a.headers)
    assert r.status_code == 200
    first_revocation = r.json()["revoked_at"]
    assert first_revocation is not None

    r = await client.get("/v1/subjects", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert "revoked" in r.json()["detail"]

    # Revoking again keeps the first time and does not resurrect the key.
    r = await client.delete(f"/v1/api-keys/{key_id_of(token)}", headers=tenant_a.headers)
    assert r.status_code == 200
    assert r.json()["revoked_at"] == first_revocation
    assert (await client.get("/v1/subjects", headers=bearer(token))).status_code == 401
    listed = {
        k["id"]: k
        for k in (await client.get("/v1/api-keys", headers=tenant_a.headers)).json()["items"]
    }
    assert listed[str(key_id_of(token))]["revoked_at"] == first_revocation


async def test_an_admin_key_can_revoke_itself(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    admin = await tenant_a.key("admin")
    r = await client.delete(f"/v1/api-keys/{key_id_of(admin)}", headers=bearer(admin))
    assert r.status_code == 200
    assert (await client.get("/v1/api-keys", headers=bearer(admin))).status_code == 401


async def test_unknown_key_and_wrong_secret_look_the_same(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    real = tenant_a.admin_key
    wrong_secret = with_secret(real, "x" * 43)
    unknown_id = keys.format_token(keys.DEFAULT_KEY_PREFIX, uuid.uuid4(), secret_of(real))
    answers = []
    for token in (wrong_secret, unknown_id):
        r = await client.get("/v1/subjects", headers=bearer(token))
        assert r.status_code == 401
        problem = r.json()
        problem.pop("request_id", None)  # names the request, not the key
        answers.append(problem)
    # Same problem for both: a caller cannot probe which key ids exist.
    assert answers[0] == answers[1]


async def test_secret_is_compared_in_constant_time(
    client: httpx.AsyncClient, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr("app.auth.keys.hmac.compare_digest", spy)
    wrong = with_secret(tenant_a.admin_key, "x" * 43)
    assert (await client.get("/v1/subjects", headers=bearer(wrong))).status_code == 401
    assert (await client.get("/v1/subjects", headers=tenant_a.headers)).status_code == 200
    assert len(calls) == 2
    # What is compared is a digest, never the presented secret itself.
    assert all(secret_of(tenant_a.admin_key) not in pair for pair in calls)


async def test_only_admin_keys_manage_keys(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    everything_but_admin = await tenant_a.key(
        "frameworks:read",
        "frameworks:write",
        "subjects:read",
        "subjects:write",
        "assessments:read",
        "assessments:write",
        "analytics:read",
    )
    h = bearer(everything_but_admin)
    target = await tenant_a.key("subjects:read")
    for r in (
        await client.get("/v1/api-keys", headers=h),
        await _create(client, h, scopes=["subjects:read"]),
        await _create(client, h, scopes=["admin"]),
        await client.delete(f"/v1/api-keys/{key_id_of(target)}", headers=h),
        await client.get("/v1/audit-events", headers=h),
    ):
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == PROBLEM
    # The target key was not revoked by the refused request.
    assert (await client.get("/v1/subjects", headers=bearer(target))).status_code == 200


async def test_key_creation_validates_scopes_and_expiry(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    for body, field in (
        ({"scopes": ["subjects:read"], "expires_at": past}, "expires_at"),
        ({"scopes": ["subjects:read"], "expires_at": "2099-01-01T00:00:00"}, "expires_at"),
        ({"scopes": ["root"]}, "scopes"),
        ({"scopes": []}, "scopes"),
    ):
        r = await _create(client, h, **body)
        assert r.status_code == 422, body
        assert r.headers["content-type"] == PROBLEM
        assert any(field in e["loc"] for e in r.json()["errors"]), r.json()
    stored = {k["id"] for k in (await client.get("/v1/api-keys", headers=h)).json()["items"]}
    assert len(stored) == 1  # only the fixture's admin key: nothing was stored


async def test_expiry_offsets_are_honoured(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    # An hour ahead, written at UTC-12: its wall-clock reading lies 11 hours in the past.
    ahead = (utcnow() + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-12)))
    r = await _create(
        client, tenant_a.headers, scopes=["subjects:read"], expires_at=ahead.isoformat()
    )
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["expires_at"]) == ahead
    assert (await client.get("/v1/subjects", headers=bearer(r.json()["key"]))).status_code == 200
    # An hour ago, written at UTC+12: its wall-clock reading lies 11 hours in the future.
    ago = (utcnow() - timedelta(hours=1)).astimezone(timezone(timedelta(hours=12)))
    r = await _create(
        client, tenant_a.headers, scopes=["subjects:read"], expires_at=ago.isoformat()
    )
    assert r.status_code == 422, r.text


async def test_expired_key_is_refused(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    token = await tenant_a.key("subjects:read", expires_at=utcnow() + timedelta(hours=1))
    assert (await client.get("/v1/subjects", headers=bearer(token))).status_code == 200
    await expire_key(tenant_a, key_id_of(token))
    r = await client.get("/v1/subjects", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert "expired" in r.json()["detail"]


async def test_key_expires_by_the_clock(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    # Long enough that creating the key and one request fit before it even on a busy machine.
    expires_at = datetime.now(UTC) + timedelta(seconds=2)
    token = await tenant_a.key("subjects:read", expires_at=expires_at)
    assert (await client.get("/v1/subjects", headers=bearer(token))).status_code == 200
    await anyio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    assert (await client.get("/v1/subjects", headers=bearer(token))).status_code == 401


async def test_key_table_holds_no_secret_and_no_token(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    tenant_b: Tenant,
    connection: AsyncConnection,
    database: Database,
) -> None:
    tokens = [tenant_a.admin_key, tenant_b.admin_key, await tenant_a.key("subjects:read")]
    for tenant in (tenant_a, tenant_b):
        # With an Idempotency-Key too: a stored replay of this response would hold the token.
        headers = {**tenant.headers, "Idempotency-Key": f"key-{tenant.slug}"}
        r = await _create(client, headers, scopes=["assessments:write"])
        assert r.status_code == 201, r.text
        tokens.append(r.json()["key"])
    revoked = (await _create(client, tenant_a.headers, scopes=["admin"])).json()["key"]
    await revoke(client, tenant_a, revoked)
    tokens.append(revoked)

    rows = (await connection.execute(text("SELECT * FROM api_key"))).mappings().all()
    ids = [row["id"] for row in rows]
    for token in tokens:  # positive control: the dump holds every issued key's row
        assert any(same_uuid(i, key_id_of(token)) for i in ids), token
    dumped = "\n".join(repr(dict(row)) for row in rows)
    for token in tokens:
        assert token not in dumped
        assert secret_of(token) not in dumped

    # Nor does any other table (audit details, stored responses...), seen as each tenant.
    for tenant in (tenant_a, tenant_b):
        if database.backend == "postgres":
            await as_tenant(connection, tenant.id)
        for table, contents in (await dump_store(connection)).items():
            for token in tokens:
                assert secret_of(token) not in contents, (table, tenant.slug)
