"""Delivers queued webhook events: signed, retried with backoff, logged per attempt.

Any number of processes may run it: each claims due queue rows (SKIP LOCKED on Postgres) by
pushing their next attempt out by a lease, commits, sends outside any transaction, then
records the result. A crash mid-send means the lease expires and the event is sent again,
so receivers should de-duplicate on the payload's `id` (at-least-once delivery).
"""

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.db import bind_tenant
from app.errors import is_transient_database_error
from app.models import WebhookDelivery, WebhookQueue, WebhookSubscription, utcnow
from app.webhooks.service import SIGNATURE_HEADER, sign
from app.webhooks.targets import TargetRefused, check_target

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 20
BASE_BACKOFF_SECONDS = 10
MAX_BACKOFF_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class _Job:
    delivery_id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    secret: str
    event: str
    body: bytes
    attempt: int


def backoff(attempt: int) -> timedelta:
    """Wait before retry ``attempt`` (1-based): 10 s, 20 s, 40 s ... capped at an hour."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, BASE_BACKOFF_SECONDS * 2 ** (attempt - 1)))


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
        self.client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False
        )

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
        """Claim due deliveries, send them, record the outcomes; returns how many were attempted."""
        jobs = await self._claim(now or utcnow())
        if not jobs:
            return 0
        outcomes = await asyncio.gather(*(self._send(job) for job in jobs))
        await self._record(jobs, outcomes)
        return len(jobs)

    async def _claim(self, now: datetime) -> list[_Job]:
        async with self.sessionmaker() as session:
            stmt = (
                select(WebhookQueue)
                .where(col(WebhookQueue.next_attempt_at) <= now)
                .order_by(col(WebhookQueue.next_attempt_at))
                .limit(BATCH)
            )
            if (await session.connection()).dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            queued = list((await session.exec(stmt)).all())
            jobs: list[_Job] = []
            for item in queued:
                await bind_tenant(session, item.tenant_id)
                delivery = await session.get(WebhookDelivery, (item.tenant_id, item.delivery_id))
                sub = None
                if delivery is not None:
                    sub = await session.get(
                        WebhookSubscription, (item.tenant_id, delivery.subscription_id)
                    )
                if (
                    delivery is None
                    or sub is None
                    or delivery.status != "pending"
                    or not sub.active
                ):
                    await session.delete(item)
                    continue
                item.next_attempt_at = now + LEASE
                session.add(item)
                body = json.dumps(delivery.payload, separators=(",", ":")).encode()
                jobs.append(
                    _Job(
                        delivery.id,
                        item.tenant_id,
                        sub.url,
                        sub.secret,
                        delivery.event,
                        body,
                        delivery.attempts + 1,
                    )
                )
            await session.commit()
            return jobs

    async def _send(self, job: _Job) -> tuple[int | None, str | None]:
        try:
            await check_target(job.url, allow_private=self.settings.webhooks_allow_private_targets)
            timestamp = int(time.time())
            response = await self.client.post(
                job.url,
                content=job.body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "competency-ladder-webhooks/1",
                    "X-Ladder-Event": job.event,
                    "X-Ladder-Delivery": str(job.delivery_id),
                    SIGNATURE_HEADER: sign(job.secret, timestamp, job.body),
                },
            )
        except TargetRefused as exc:
            return None, f"refused target: {exc}"[:500]
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        return response.status_code, None if response.is_success else f"HTTP {response.status_code}"

    async def _record(
        self, jobs: list[_Job], outcomes: list[tuple[int | None, str | None]]
    ) -> None:
        async with self.sessionmaker() as session:
            now = utcnow()
            for job, (status, error) in zip(jobs, outcomes, strict=True):
                await bind_tenant(session, job.tenant_id)
                delivery = await session.get(WebhookDelivery, (job.tenant_id, job.delivery_id))
                queued = await session.get(WebhookQueue, job.delivery_id)
                if delivery is None:
                    if queued is not None:
                        await session.delete(queued)
                    continue
                delivery.attempts = job.attempt
                delivery.last_status_code = status
                delivery.last_error = error
                done = error is None
                exhausted = job.attempt >= self.settings.webhook_max_attempts
                if done:
                    delivery.status, delivery.delivered_at = "delivered", now
                elif exhausted:
                    delivery.status = "failed"
                else:
                    delivery.next_attempt_at = now + backoff(job.attempt)
                session.add(delivery)
                if queued is not None:
                    if done or exhausted:
                        await session.delete(queued)
                    else:
                        queued.next_attempt_at = delivery.next_attempt_at
                        session.add(queued)
            await session.commit()

    async def aclose(self) -> None:
        await self.client.aclose()
