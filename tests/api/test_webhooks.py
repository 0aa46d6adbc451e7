"""Outbound webhooks: SSRF refusal, signed deliveries to a real local receiver, retries."""

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from app.config import Settings
from app.models import utcnow
from app.webhooks.dispatcher import LEASE, Dispatcher, backoff
from tests.api.test_scores import PM_RATINGS, ratings
from tests.api.test_subjects_assessments import subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio


class Receiver:
    """An HTTP server on loopback that records what it is sent and answers a chosen status."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.on_post: Callable[[], None] | None = None  # runs while a request is being answered
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                if receiver.on_post is not None:
                    receiver.on_post()
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def allow_private(app: Any, settings: Settings) -> Settings:
    permissive = settings.model_copy(update={"webhooks_allow_private_targets": True})
    app.state.settings = permissive
    return permissive


async def subscribed(client: httpx.AsyncClient, tenant: Tenant, *events: str) -> str:
    """A subscription to ``events`` at a loopback address nothing listens on (needs the
    allow_private fixture); its id, for reading its delivery log."""
    r = await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": list(events)},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_private_targets_are_refused_by_default(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    for url in (
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
    ):
        r = await client.post(
            "/v1/webhooks",
            json={"url": url, "events": ["assessment.created"]},
            headers=tenant_a.headers,
        )
        assert r.status_code == 422, url
        assert r.json()["errors"][0]["loc"] == ["body", "url"]


async def post_assessment(
    client: httpx.AsyncClient, tenant: Tenant, values: dict[str, int], when: str
) -> None:
    body = {
        "subject_ref": "emp-1",
        "framework": {"key": "product-management"},
        "rater_ref": "m1",
        "rater_role": "manager",
        "assessed_at": when,
        "ratings": ratings(values),
    }
    r = await client.post("/v1/assessments", json=body, headers=tenant.headers)
    assert r.status_code == 201, r.text


async def test_signed_deliveries_reach_a_local_receiver(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    receiver: Receiver,
    allow_private: Settings,
    sessionmaker: Any,
) -> None:
    h = tenant_a.headers
    r = await client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "events": ["assessment.created", "readiness.changed"]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in (await client.get(f"/v1/webhooks/{hook['id']}", headers=h)).json()
    await client.post("/v1/subjects", json=subject("emp-1", track="management"), headers=h)
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    await post_assessment(client, tenant_a, PM_RATINGS, yesterday)

    dispatcher = Dispatcher(sessionmaker, allow_private)
    try:
        assert await dispatcher.dispatch_once() == 2
    finally:
        await dispatcher.aclose()
    events = {json.loads(m["body"])["event"]: m for m in receiver.received}
    assert set(events) == {"assessment.created", "readiness.changed"}
    created = events["assessment.created"]
    payload = json.loads(created["body"])
    assert payload["data"]["subject_ref"] == "emp-1"
    assert payload["data"]["ratings"] == len(PM_RATINGS)
    # The receiver can verify the signature with the secret it was given once.
    stamp, mac = (
        part.split("=", 1)[1] for part in created["headers"]["X-Ladder-Signature"].split(",")
    )
    expected = hmac.new(
        hook["secret"].encode(), f"{stamp}.".encode() + created["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(mac, expected)
    change = json.loads(events["readiness.changed"]["body"])["data"]
    assert change["before"] == {
        "attained_level": None,
        "next_level": "apm",
        "readiness_next": 0.0,
        "level_index": 0.0,
    }
    assert change["after"]["attained_level"] == "pm"
    log = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=h)).json()["items"]
    assert sorted((d["event"], d["status"], d["attempts"]) for d in log) == [
        ("assessment.created", "delivered", 1),
        ("readiness.changed", "delivered", 1),
    ]


async def test_failed_deliveries_are_retried_with_backoff(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    receiver: Receiver,
    allow_private: Settings,
    sessionmaker: Any,
) -> None:
    h = tenant_a.headers
    r = await client.post(
        "/v1/webhooks", json={"url": receiver.url, "events": ["assessment.created"]}, headers=h
    )
    hook = r.json()
    await client.post("/v1/subjects", json=subject("emp-1"), headers=h)
    await post_assessment(
        client, tenant_a, {"execution": 3}, (utcnow() - timedelta(days=1)).isoformat()
    )
    receiver.status = 503
    dispatcher = Dispatcher(sessionmaker, allow_private)
    try:
        assert await dispatcher.dispatch_once() == 1
        [first] = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=h)).json()[
            "items"
        ]
        assert (first["status"], first["attempts"], first["last_status_code"]) == (
            "pending",
            1,
            503,
        )
        assert await dispatcher.dispatch_once() == 0  # not due before the backoff has passed
        receiver.status = 204
        later = utcnow() + backoff(1) + timedelta(seconds=1)
        assert await dispatcher.dispatch_once(now=later) == 1
    finally:
        await dispatcher.aclose()
    [done] = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=h)).json()["items"]
    assert (done["status"], done["attempts"]) == ("delivered", 2)
    assert len(receiver.received) == 2
    assert backoff(1) == timedelta(seconds=10)
    assert backoff(3) == timedelta(seconds=40)
    assert backoff(30) == timedelta(hours=1)


async def test_webhooks_are_tenant_scoped(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    tenant_b: Tenant,
    allow_private: Settings,
    receiver: Receiver,
) -> None:
    r = await client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "events": ["assessment.created"]},
        headers=tenant_a.headers,
    )
    hook_id = r.json()["id"]
    assert (
        await client.get(f"/v1/webhooks/{hook_id}", headers=tenant_b.headers)
    ).status_code == 404
    assert (
        await client.delete(f"/v1/webhooks/{hook_id}", headers=tenant_b.headers)
    ).status_code == 404
    assert (await client.get("/v1/webhooks", headers=tenant_b.headers)).json()["items"] == []
    assert (
        await client.delete(f"/v1/webhooks/{hook_id}", headers=tenant_a.headers)
    ).status_code == 204


async def subscribe(client: httpx.AsyncClient, tenant: Tenant, url: str) -> str:
    r = await client.post(
        "/v1/webhooks", json={"url": url, "events": ["assessment.created"]}, headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def delivery_log(client: httpx.AsyncClient, tenant: Tenant, hook: str) -> dict[str, Any]:
    """The one delivery of a webhook, as its tenant sees it through the API."""
    r = await client.get(f"/v1/webhooks/{hook}/deliveries", headers=tenant.headers)
    assert r.status_code == 200, r.text
    [delivery] = r.json()["items"]
    return dict(delivery)


def parse(stamp: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(stamp)


async def test_a_batch_mixing_tenants_is_recorded_under_each_tenant(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    tenant_b: Tenant,
    allow_private: Settings,
    sessionmaker: Any,
) -> None:
    """Issue 12 item 1: on Postgres with the RLS-bound app role, one round holds both tenants'
    jobs; each is recorded under its own tenant, retried with backoff until it succeeds or runs
    out of attempts, and never sent again once it succeeded."""
    settings = allow_private.model_copy(update={"webhook_max_attempts": 3})
    with Receiver() as ok, Receiver() as failing:
        failing.status = 500
        hook_a = await subscribe(client, tenant_a, ok.url)
        hook_b = await subscribe(client, tenant_b, failing.url)
        yesterday = (utcnow() - timedelta(days=1)).isoformat()
        for tenant in (tenant_a, tenant_b):
            r = await client.post("/v1/subjects", json=subject("emp-1"), headers=tenant.headers)
            assert r.status_code == 201, r.text
            await post_assessment(client, tenant, {"execution": 3}, yesterday)
        dispatcher = Dispatcher(sessionmaker, settings)
        try:
            before = utcnow()
            assert await dispatcher.dispatch_once() == 2  # one batch, both tenants
            after = utcnow()
            a = await delivery_log(client, tenant_a, hook_a)
            b = await delivery_log(client, tenant_b, hook_b)
            assert (a["status"], a["attempts"], a["last_status_code"]) == ("delivered", 1, 200)
            assert (b["status"], b["attempts"], b["last_status_code"]) == ("pending", 1, 500)
            assert b["last_error"] == "HTTP 500"
            assert before + backoff(1) <= parse(b["next_attempt_at"]) <= after + backoff(1)
            assert (len(ok.received), len(failing.received)) == (1, 1)
            # Nothing is due before the backoff: no round resends anything.
            assert await dispatcher.dispatch_once() == 0
            # Past every lease and backoff: only the failing delivery is tried again.
            for attempt in (2, 3):
                later = utcnow() + LEASE + backoff(attempt) + timedelta(seconds=1)
                assert await dispatcher.dispatch_once(now=later) == 1
                b = await delivery_log(client, tenant_b, hook_b)
                assert (b["attempts"], len(failing.received)) == (attempt, attempt)
            assert (b["status"], b["last_status_code"]) == ("failed", 500)
            # Out of attempts: never sent again, and the delivered one never resent.
            much_later = utcnow() + timedelta(days=2)
            assert await dispatcher.dispatch_once(now=much_later) == 0
        finally:
            await dispatcher.aclose()
        assert (len(ok.received), len(failing.received)) == (1, 3)
        a = await delivery_log(client, tenant_a, hook_a)
        assert (a["status"], a["attempts"]) == ("delivered", 1)
        bodies = [json.loads(m["body"]) for m in failing.received]
        assert len({body["id"] for body in bodies}) == 1  # the same event each time


def outage() -> OperationalError:
    return OperationalError("BEGIN", None, ConnectionRefusedError("the database restarts"))


class FlakyDatabase:
    """The dispatcher's sessionmaker, made unreachable while ``down`` is set (a restart), or
    failing to commit for one tenant while ``failing_tenant`` is set."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.down = False
        self.failing_tenant: Any = None

    def __call__(self, **options: Any) -> Any:
        if self.down:
            raise outage()
        session = self.real(**options)
        commit = session.commit

        async def flaky_commit() -> None:
            tenant = session.sync_session.info.get("tenant_id")
            if tenant is not None and tenant == self.failing_tenant:
                raise outage()
            await commit()

        session.commit = flaky_commit
        return session


@pytest.mark.parametrize("answer", [204, 500])
async def test_an_attempt_sent_while_the_database_restarts_is_still_recorded(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    receiver: Receiver,
    allow_private: Settings,
    sessionmaker: Any,
    answer: int,
) -> None:
    """Issue 12 item 14: the database goes away while the receiver answers, so recording the
    outcome fails; the log never shows fewer attempts than the receiver saw, the outcome is
    recorded once the database is back, and a delivered event is not sent again."""
    hook = await subscribe(client, tenant_a, receiver.url)
    await client.post("/v1/subjects", json=subject("emp-1"), headers=tenant_a.headers)
    await post_assessment(
        client, tenant_a, {"execution": 3}, (utcnow() - timedelta(days=1)).isoformat()
    )
    db = FlakyDatabase(sessionmaker)
    receiver.status = answer
    receiver.on_post = lambda: setattr(db, "down", True)
    dispatcher = Dispatcher(sessionmaker, allow_private)
    dispatcher.sessionmaker = db  # type: ignore[assignment]
    try:
        with pytest.raises(OperationalError):
            await dispatcher.dispatch_once()
        receiver.on_post = None
        db.down = False
        seen = await delivery_log(client, tenant_a, hook)
        assert seen["attempts"] == len(receiver.received) == 1
        # The next round records what the receiver answered.
        assert await dispatcher.dispatch_once() == 0
        done = await delivery_log(client, tenant_a, hook)
        assert (done["attempts"], done["last_status_code"]) == (1, answer)
        if answer == 204:
            assert done["status"] == "delivered"
            later = utcnow() + LEASE + timedelta(seconds=1)
            assert await dispatcher.dispatch_once(now=later) == 0
            assert len(receiver.received) == 1
        else:
            assert done["status"] == "pending"
            assert parse(done["next_attempt_at"]) > utcnow() + backoff(1) - timedelta(seconds=5)
            later = utcnow() + LEASE + backoff(1) + timedelta(seconds=1)
            assert await dispatcher.dispatch_once(now=later) == 1
            again = await delivery_log(client, tenant_a, hook)
            assert again["attempts"] == len(receiver.received) == 2
    finally:
        await dispatcher.aclose()


async def test_one_tenant_failing_to_record_does_not_hold_back_another(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    tenant_b: Tenant,
    allow_private: Settings,
    sessionmaker: Any,
) -> None:
    """Recording tenant B's outcome fails (transiently) for a while: tenant A's deliveries are
    recorded and new ones sent meanwhile, and B's outcome is recorded once it can be."""
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    with Receiver() as rec_a, Receiver() as rec_b:
        hook_a = await subscribe(client, tenant_a, rec_a.url)
        hook_b = await subscribe(client, tenant_b, rec_b.url)
        for tenant in (tenant_a, tenant_b):
            await client.post("/v1/subjects", json=subject("emp-1"), headers=tenant.headers)
            await post_assessment(client, tenant, {"execution": 3}, yesterday)
        db = FlakyDatabase(sessionmaker)
        rec_b.on_post = lambda: setattr(db, "failing_tenant", tenant_b.id)
        dispatcher = Dispatcher(sessionmaker, allow_private)
        dispatcher.sessionmaker = db  # type: ignore[assignment]
        try:
            with pytest.raises(OperationalError):
                await dispatcher.dispatch_once()
            a = await delivery_log(client, tenant_a, hook_a)
            assert (a["status"], a["attempts"]) == ("delivered", 1)
            b = await delivery_log(client, tenant_b, hook_b)
            assert (b["status"], b["attempts"]) == ("pending", 1)
            # Tenant A goes on while B's outcome still cannot be recorded.
            await post_assessment(client, tenant_a, {"execution": 4}, yesterday)
            with pytest.raises(OperationalError):
                assert await dispatcher.dispatch_once() == 1
            r = await client.get(f"/v1/webhooks/{hook_a}/deliveries", headers=tenant_a.headers)
            assert [(d["status"], d["attempts"]) for d in r.json()["items"]] == [
                ("delivered", 1)
            ] * 2
            db.failing_tenant = None
            assert await dispatcher.dispatch_once() == 0
            b = await delivery_log(client, tenant_b, hook_b)
            assert (b["status"], b["attempts"], b["last_status_code"]) == ("delivered", 1, 200)
            later = utcnow() + LEASE + timedelta(seconds=1)
            assert await dispatcher.dispatch_once(now=later) == 0
        finally:
            await dispatcher.aclose()
        assert (len(rec_a.received), len(rec_b.received)) == (2, 1)
