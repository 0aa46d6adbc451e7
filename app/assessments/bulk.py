"""Bulk assessment ingest: validated as strictly as single creates, stored in bounded batches.

The body is decoded item by item (``app.bulk.iter_items``) and handled BATCH_ITEMS at a time:
validated, then inserted with one set-wise statement (repository.insert_batch), all in the
request's one transaction; a batch's insert runs while the next batch is decoded. So a maximum-size request never holds more than one batch of
decoded items, models and rows, and no single statement grows with the request. All or
nothing still holds: the first refused item stops the inserting, the rest is only validated
(so every reason is reported), and the refusal rolls the transaction back.
"""

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments import repository as repo
from app.assessments.schemas import AssessmentCreate
from app.assessments.service import draft_error, rating_errors
from app.audit.repository import record
from app.auth.principal import Principal
from app.bulk import MAX_REPORTED_ERRORS, BulkMode, BulkRefusal, refuse_all, validation_errors
from app.errors import AppError, FieldError
from app.frameworks import service as frameworks
from app.models import WebhookSubscription, utcnow
from app.observability import metrics
from app.webhooks import events
from app.webhooks import service as webhooks

# Items validated and inserted together: about 3 MB of a maximum-size body, 14,000 ratings.
BATCH_ITEMS = 1000


class BulkAssessmentResult(BaseModel):
    mode: BulkMode
    received: int
    created: int
    ratings_created: int
    ids: list[uuid.UUID] = Field(description="Ids of the created assessments, in request order.")
    refused: list[BulkRefusal] = Field(description="Items not stored and why (partial mode).")


_Parsed = tuple[int, AssessmentCreate]


@dataclass(frozen=True, slots=True)
class _Accepted:
    index: int
    body: AssessmentCreate
    subject_id: uuid.UUID
    resolved: frameworks.ResolvedVersion


class _Checker:
    """Checks batches of items against the tenant's subjects and versions, remembering lookups."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.subject_ids: dict[str, uuid.UUID | None] = {}
        self.versions: dict[tuple[str, int | None], frameworks.ResolvedVersion | AppError] = {}

    @staticmethod
    def parse(batch: list[tuple[int, Any]]) -> tuple[list[_Parsed], list[BulkRefusal]]:
        """Validate the items' shape (no database): parsed items and refusals."""
        refusals: list[BulkRefusal] = []
        parsed: list[_Parsed] = []
        for i, item in batch:
            try:
                parsed.append((i, AssessmentCreate.model_validate(item)))
            except ValidationError as exc:
                refusals.append(BulkRefusal(index=i, errors=validation_errors(exc, i)))
        return parsed, refusals

    async def check(
        self, parsed: list[_Parsed], refusals: list[BulkRefusal]
    ) -> tuple[list[_Accepted], list[BulkRefusal]]:
        """Check parsed items against the tenant's data: storable items and every refusal of
        the batch (``refusals``: those of ``parse``), each in request order."""
        unknown = sorted({b.subject_ref for _, b in parsed} - self.subject_ids.keys())
        if unknown:
            self.subject_ids.update(dict.fromkeys(unknown))
            self.subject_ids.update(
                await repo.subject_ids(self.session, self.principal.tenant_id, unknown)
            )
        refusals = list(refusals)
        accepted: list[_Accepted] = []
        for i, body in parsed:
            loc: list[str | int] = ["body", i]
            errors: list[FieldError] = []
            subject_id = self.subject_ids[body.subject_ref]
            if subject_id is None:
                errors.append(
                    FieldError(
                        loc=[*loc, "subject_ref"],
                        msg=f"no subject {body.subject_ref!r} in this tenant",
                        type="not_found",
                    )
                )
            resolved = await self._resolve(body.framework.key, body.framework.version)
            if isinstance(resolved, AppError):
                errors.append(
                    FieldError(loc=[*loc, "framework"], msg=resolved.detail, type="not_found")
                )
            elif resolved.version.status == "draft":
                errors.append(draft_error(loc))
            else:
                errors += rating_errors(
                    body,
                    frameworks.compiled(resolved.version),
                    frameworks.scale_values(resolved.version),
                    loc,
                )
            if errors:
                refusals.append(BulkRefusal(index=i, errors=errors))
            elif subject_id is not None and not isinstance(resolved, AppError):
                accepted.append(_Accepted(i, body, subject_id, resolved))
        refusals.sort(key=lambda r: r.index)
        return accepted, refusals

    async def _resolve(
        self, key: str, version: int | None
    ) -> frameworks.ResolvedVersion | AppError:
        ref = (key, version)
        if ref not in self.versions:
            try:
                self.versions[ref] = await frameworks.resolve(self.session, self.principal, *ref)
            except AppError as exc:
                self.versions[ref] = exc
        return self.versions[ref]


class _Refusals:
    """Refused items in request order; in all-or-nothing mode only as many as get reported."""

    def __init__(self, mode: BulkMode) -> None:
        self.mode = mode
        self.kept: list[BulkRefusal] = []
        self.count = 0
        self.errors = 0

    def add(self, refusals: list[BulkRefusal]) -> None:
        self.count += len(refusals)
        for refusal in refusals:
            if self.mode == "partial" or self.errors < MAX_REPORTED_ERRORS:
                self.kept.append(refusal)
                self.errors += len(refusal.errors)

    @property
    def refuse_all(self) -> bool:
        """Whether the request is refused as a whole (all-or-nothing and something is bad)."""
        return self.mode == "all_or_nothing" and self.count > 0


class _Store:
    """Inserts accepted batches and announces them; keeps only ids and counts."""

    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        subscribers: list[WebhookSubscription],
    ) -> None:
        self.session = session
        self.tenant_id = principal.tenant_id
        self.subscribers = subscribers
        self.now = utcnow()
        self.sequence = time.time_ns()
        self.ids: list[uuid.UUID] = []
        self.ratings = 0

    async def insert(self, accepted: list[_Accepted]) -> None:
        """One batch: one INSERT statement, then its assessment.created events."""
        ids = [uuid.uuid4() for _ in accepted]
        first = len(self.ids)
        ratings = [(aid, r) for aid, a in zip(ids, accepted, strict=True) for r in a.body.ratings]
        await repo.insert_batch(
            self.session,
            self.tenant_id,
            {
                "id": ids,
                "subject_id": [a.subject_id for a in accepted],
                "framework_tenant_id": [a.resolved.version.tenant_id for a in accepted],
                "framework_version_id": [a.resolved.version.id for a in accepted],
                "rater_ref": [a.body.rater_ref for a in accepted],
                "rater_role": [a.body.rater_role for a in accepted],
                "assessed_at": [a.body.assessed_at for a in accepted],
                "created_at": [self.now] * len(accepted),
                "sequence": [self.sequence + first + n for n in range(len(accepted))],
            },
            {
                "assessment_id": [aid for aid, _ in ratings],
                "competency_key": [r.competency for _, r in ratings],
                "proficiency": [r.proficiency for _, r in ratings],
                "evidence": [r.evidence for _, r in ratings],
                "confidence": [r.confidence for _, r in ratings],
            },
        )
        self.ids += ids
        self.ratings += len(ratings)
        if self.subscribers:
            await webhooks.enqueue(
                self.session,
                self.tenant_id,
                "assessment.created",
                [
                    events.assessment_created(
                        aid,
                        a.body.subject_ref,
                        a.resolved,
                        a.body.rater_role,
                        a.body.assessed_at,
                        len(a.body.ratings),
                    )
                    for aid, a in zip(ids, accepted, strict=True)
                ],
                self.subscribers,
                subject_ids=[a.subject_id for a in accepted],
            )
            await self.session.flush()  # the batch's deliveries leave the session's memory


async def bulk_create(
    session: AsyncSession,
    principal: Principal,
    items: Callable[[], Iterator[Any]],
    mode: BulkMode,
) -> BulkAssessmentResult:
    """Validate and store the items batch by batch; ``items`` yields them from the body.

    With readiness.changed subscribers, a first pass only validates: where everyone stood is
    scored before anything of the request is stored, as a single set-wise insert would see it.
    """
    tenant_id = principal.tenant_id
    checker = _Checker(session, principal)
    refused = _Refusals(mode)
    watchers = await events.readiness_watchers(session, tenant_id)
    snapshots: list[events.Snapshot] = []
    first_pass: set[int] | None = None
    if watchers:
        first_pass = set()
        received = 0
        touched: dict[uuid.UUID, tuple[frameworks.ResolvedVersion, set[uuid.UUID]]] = {}
        for batch in _batches(items()):
            received += len(batch)
            accepted, refusals = await checker.check(*checker.parse(batch))
            refused.add(refusals)
            for a in accepted:
                first_pass.add(a.index)
                touched.setdefault(a.resolved.version.id, (a.resolved, set()))[1].add(a.subject_id)
        if refused.refuse_all:
            raise refuse_all(refused.kept, received, refused.count)
        for resolved, subject_ids in touched.values():
            ordered = sorted(subject_ids)
            for start in range(0, len(ordered), BATCH_ITEMS):
                chunk = ordered[start : start + BATCH_ITEMS]
                snapshots.append(await events.snapshot(session, tenant_id, resolved, chunk))

    store = _Store(
        session, principal, await webhooks.subscribers(session, tenant_id, "assessment.created")
    )
    received = 0
    # Each batch's insert runs while the next batch is decoded and validated (no database
    # work), so Postgres and the worker's CPU overlap; only one statement is ever in flight.
    inserting: asyncio.Task[None] | None = None
    try:
        for batch in _batches(items()):
            received += len(batch)
            if first_pass is not None:
                batch = [(i, item) for i, item in batch if i in first_pass]
            parsed = checker.parse(batch)
            if inserting is not None:
                done, inserting = inserting, None
                await done
            accepted, refusals = await checker.check(*parsed)
            refused.add(refusals)
            if accepted and not refused.refuse_all:
                inserting = asyncio.create_task(store.insert(accepted))
                await asyncio.sleep(0)  # let it send the statement
    finally:
        if inserting is not None:
            await inserting
    if refused.refuse_all or (refused.count and not store.ids):  # nothing created is no 201
        raise refuse_all(refused.kept, received, refused.count)

    if store.ids:
        for before in snapshots:
            await events.readiness_changed(session, tenant_id, before, watchers)
        record(
            session,
            principal,
            "assessment.bulk_created",
            "assessment",
            str(store.ids[0]),
            {"assessments": len(store.ids), "ratings": store.ratings, "refused": refused.count},
        )
        await session.flush()
    metrics.record_bulk_items("assessments", len(store.ids), refused.count)
    return BulkAssessmentResult(
        mode=mode,
        received=received,
        created=len(store.ids),
        ratings_created=store.ratings,
        ids=store.ids,
        refused=refused.kept,
    )


def _batches(items: Iterable[Any]) -> Iterator[list[tuple[int, Any]]]:
    numbered = enumerate(items)
    while batch := list(itertools.islice(numbered, BATCH_ITEMS)):
        yield batch
