"""Delivers queued webhook events: signed, retried with backoff, logged per attempt.

Any number of processes may run it. A round has three steps, none of which holds a transaction
across the network:

1. Claim: lock due queue rows (SKIP LOCKED on Postgres) and push them out by a lease, in one
   short transaction (the queue table has no tenant data and no row-level security).
2. Per tenant, in that tenant's own transaction (row-level security sees only its rows): drop
   rows whose delivery is gone or finished, and count the attempt on the delivery *before*
   sending, so the log never shows fewer attempts than receivers saw.
3. Send, then record each outcome in its tenant's own transaction. Outcomes that could not be
   recorded (the database went away mid-round) are kept and recorded first thing next round.

A crash mid-send means the lease expires and the event is sent again, so receivers should
de-duplicate on the payload's `id` (at-least-once delivery). One tenant's failure to start or
record its attempts does not hold back another's. Each request goes to the addresses the target
check approved (see ``targets``), never to a fresh DNS answer.
"""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.db import remember_tenant, unit_of_work
from app.errors import is_transient_database_error
from app.models import WebhookDelivery, WebhookQueue, WebhookSubscription, utcnow
from app.observability import metrics
from app.webhooks.repository import by_key, lock_due
from app.webhooks.service import SIGNATURE_HEADER, sign
from app.webhooks.targets import IPAddress, TargetRefused, check_target

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 20
BASE_BACKOFF_SECONDS = 10
MAX_BACKOFF_SECONDS = 3600
MAX_ADDRESSES = 3  # checked addresses tried in turn when a connection cannot be made

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Job:
    delivery_id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    secret: str
    event: str
    body: bytes
    attempt: int
    leased_until: datetime  # then the delivery may be claimed and sent again


Outcome = tuple[int | None, str | None]  # HTTP status (None: no answer), error (None: success)


def backoff(attempt: int) -> timedelta:
    """Wait before retry ``attempt`` (1-based): 10 s, 20 s, 40 s ... capped at an hour."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, BASE_BACKOFF_SECONDS * 2 ** (attempt - 1)))


def _by_tenant(items: Iterable[T], tenant_of: Callable[[T], uuid.UUID]) -> dict[uuid.UUID, list[T]]:
    groups: dict[uuid.UUID, list[T]] = {}
    for item in items:
        groups.setdefault(tenant_of(item), []).append(item)
    return groups


def _pinned(url: str, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL with the checked address as host, plus the Host header and TLS server name."""
    original = httpx.URL(url)
    extensions = {}
    if original.scheme == "https":
        extensions["sni_hostname"] = original.raw_host.decode("ascii")
    host_header = original.netloc.decode("ascii")
    return original.copy_with(host=str(address)), {"Host": host_header}, extensions


class Dispatcher:
    """Polls the queue and delivers due events."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        # No keep-alive: connections go to pinned addresses, and a pooled connection to one
        # address must never carry another host name's request (its TLS peer proved only one).
        self.client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            # Deliveries go to the address that was checked, never through an HTTP(S)_PROXY
            # from the environment (which would receive the pinned request and re-resolve).
            trust_env=False,
        )
        self._unrecorded: list[tuple[_Job, Outcome]] = []

    async def run_forever(self) -> None:
        """Deliver until cancelled; a failing round is logged and retried after the poll interval."""
        while True:
            try:
                sent = await self.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient_database_error(exc):
                    # The API answers 503 meanwhile; deliveries wait in the outbox.
                    log.warning(
                        "webhook dispatch paused: database unavailable (%s)", type(exc).__name__
                    )
                else:
                    log.exception("webhook dispatch round failed")
                sent = 0
            if sent == 0:
                await asyncio.sleep(self.settings.webhook_poll_seconds)

    async def dispatch_once(self, now: datetime | None = None) -> int:
        """Claim due deliveries, send them, record the outcomes; returns how many were attempted.

        Outcomes that could not be recorded are kept and tried again first thing next round;
        the database error is raised at the end of the round (the loop logs it and waits).
        """
        stuck = await self._record_unrecorded()
        jobs = await self._claim(now or utcnow())
        if jobs:
            outcomes = await asyncio.gather(*(self._send(job) for job in jobs))
            for _, error in outcomes:
                metrics.record_webhook_attempt(delivered=error is None)
            self._unrecorded.extend(zip(jobs, outcomes, strict=True))
            stuck = await self._record_unrecorded()
        if stuck is not None:
            raise stuck
        return len(jobs)

    async def _claim(self, now: datetime) -> list[_Job]:
        async with unit_of_work(self.sessionmaker) as session:
            queued = await lock_due(session, now, BATCH)
            for item in queued:
                item.next_attempt_at = now + LEASE
                session.add(item)
            claimed = [(item.tenant_id, item.delivery_id) for item in queued]
        jobs: list[_Job] = []
        for tenant_id, items in _by_tenant(claimed, lambda c: c[0]).items():
            try:
                jobs += await self._start_attempts(tenant_id, [d for _, d in items], now + LEASE)
            except Exception as exc:
                # Nothing sent; leased, so tried again after the lease. Other tenants go on.
                if is_transient_database_error(exc):
                    log.warning(
                        "webhook deliveries of tenant %s not started (%s)",
                        tenant_id,
                        type(exc).__name__,
                    )
                else:
                    log.exception("webhook deliveries of tenant %s not started", tenant_id)
        return jobs

    async def _start_attempts(
        self, tenant_id: uuid.UUID, delivery_ids: Sequence[uuid.UUID], leased_until: datetime
    ) -> list[_Job]:
        """Count one more attempt on each claimed delivery of one tenant, in its transaction."""
        async with unit_of_work(self.sessionmaker) as session:
            remember_tenant(session, tenant_id)
            deliveries = await by_key(session, WebhookDelivery, "id", tenant_id, delivery_ids)
            sub_ids = {d.subscription_id for d in deliveries.values()}
            subs = await by_key(session, WebhookSubscription, "id", tenant_id, sub_ids)
            queued = await by_key(session, WebhookQueue, "delivery_id", tenant_id, delivery_ids)
            jobs: list[_Job] = []
            for delivery_id in delivery_ids:
                delivery = deliveries.get(delivery_id)
                sub = subs.get(delivery.subscription_id) if delivery is not None else None
                item = queued.get(delivery_id)
                if (
                    delivery is None
                    or sub is None
                    or delivery.status != "pending"
                    or not sub.active
                ):
                    if item is not None:
                        await session.delete(item)
                    continue
                if delivery.attempts >= self.settings.webhook_max_attempts:
                    # Attempts were counted but their outcomes never recorded (crashes).
                    delivery.status = "failed"
                    session.add(delivery)
                    if item is not None:
                        await session.delete(item)
                    continue
                delivery.attempts += 1
                session.add(delivery)
                body = json.dumps(delivery.payload, separators=(",", ":")).encode()
                jobs.append(
                    _Job(
                        delivery.id,
                        tenant_id,
                        sub.url,
                        sub.secret,
                        delivery.event,
                        body,
                        delivery.attempts,
                        leased_until,
                    )
                )
            return jobs

    async def _send(self, job: _Job) -> Outcome:
        try:
            addresses = await check_target(
                job.url, allow_private=self.settings.webhooks_allow_private_targets
            )
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "competency-ladder-webhooks/1",
                "X-Ladder-Event": job.event,
                "X-Ladder-Delivery": str(job.delivery_id),
                SIGNATURE_HEADER: sign(job.secret, timestamp, job.body),
            }
            if not addresses:  # private targets allowed: no check, the client resolves
                response = await self.client.post(job.url, content=job.body, headers=headers)
            else:
                response = await self._post_pinned(job, addresses[:MAX_ADDRESSES], headers)
        except TargetRefused as exc:
            return None, f"refused target: {exc}"[:500]
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        return response.status_code, None if response.is_success else f"HTTP {response.status_code}"

    async def _post_pinned(
        self, job: _Job, addresses: Sequence[IPAddress], headers: dict[str, str]
    ) -> httpx.Response:
        """POST to the checked addresses in turn until one accepts a connection; never resolve."""
        for n, address in enumerate(addresses, start=1):
            url, host, extensions = _pinned(job.url, address)
            request = self.client.build_request(
                "POST", url, content=job.body, headers=headers | host, extensions=extensions
            )
            try:
                return await self.client.send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if n == len(addresses):
                    raise
        raise AssertionError("unreachable: check_target returns at least one address")

    async def _record_unrecorded(self) -> Exception | None:
        """Record kept outcomes, each tenant in its own transaction; keep what fails to record.

        Returns the first database error met. An outcome still unrecorded when its lease ends is
        dropped: its attempt is already counted, and the delivery is due to be sent again.
        """
        clock = utcnow()
        pending = [r for r in self._unrecorded if r[0].leased_until > clock]
        if len(pending) < len(self._unrecorded):
            log.warning(
                "webhook outcomes dropped unrecorded: %d", len(self._unrecorded) - len(pending)
            )
        self._unrecorded = []
        failure: Exception | None = None
        for tenant_id, results in _by_tenant(pending, lambda r: r[0].tenant_id).items():
            try:
                await self._record(tenant_id, results)
            except Exception as exc:
                if not is_transient_database_error(exc):
                    # A bug, not an outage: retrying would fail forever. The attempt is
                    # already counted; the lease expires and the event is sent again.
                    log.exception("webhook outcomes of tenant %s not recorded", tenant_id)
                    continue
                self._unrecorded.extend(results)
                failure = failure or exc
        return failure

    async def _record(self, tenant_id: uuid.UUID, results: Sequence[tuple[_Job, Outcome]]) -> None:
        async with unit_of_work(self.sessionmaker) as session:
            remember_tenant(session, tenant_id)
            now = utcnow()
            for job, (status, error) in results:
                delivery = await session.get(WebhookDelivery, (tenant_id, job.delivery_id))
                queued = await session.get(WebhookQueue, job.delivery_id)
                if delivery is None or delivery.status != "pending":
                    if queued is not None:  # gone, or finished meanwhile (e.g. cancelled)
                        await session.delete(queued)
                    continue
                delivery.attempts = max(delivery.attempts, job.attempt)
                delivery.last_status_code = status
                delivery.last_error = error
                session.add(delivery)
                if error is None:
                    delivery.status, delivery.delivered_at = "delivered", now
                elif delivery.attempts > job.attempt:
                    continue  # sent again meanwhile (lease expired): that attempt schedules
                elif job.attempt >= self.settings.webhook_max_attempts:
                    delivery.status = "failed"
                else:
                    delivery.next_attempt_at = now + backoff(job.attempt)
                    if queued is not None:
                        queued.next_attempt_at = delivery.next_attempt_at
                        session.add(queued)
                    continue
                if queued is not None:
                    await session.delete(queued)

    async def aclose(self) -> None:
        await self.client.aclose()
