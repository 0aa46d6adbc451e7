"""Learning-record use cases: store statements, act on them, report what cannot be mapped.

Actors map to subjects by one rule: an ``account`` whose ``homePage`` the tenant registered and
whose ``name`` is the subject's ``external_ref``; or a mailbox (``mbox``, or its
``mbox_sha1sum``) registered for the subject. A statement with a completion verb (ADL
``completed``, ``passed`` or ``mastered``) about an activity whose IRI a visible framework names
records that activity as completed, with the statement's id as provenance; ``voided`` undoes
what the voided statement recorded; every other verb (``failed`` among them) records nothing.
"""

import hashlib
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.repository import record
from app.auth.principal import Principal
from app.errors import Conflict, NotFound
from app.frameworks import repository as frameworks_repo
from app.frameworks import service as frameworks
from app.models import (
    Assessment,
    CompletedActivity,
    Framework,
    LearningRecordAgent,
    LearningRecordSettings,
    Rating,
    WebhookSubscription,
    XapiStatement,
    XapiUnmapped,
    utcnow,
)
from app.subjects import repository as subjects_repo
from app.subjects import service as subjects
from app.webhooks import events
from app.webhooks import service as webhooks
from app.xapi import repository as repo
from app.xapi.statements import COMPLETION_VERBS, VOIDED, Actor, Statement

# The authority the service names on statements it stores: the API key that sent them.
AUTHORITY_HOME_PAGE = "https://competency-ladder.dev/api-keys"

# What the activities of a framework version stand for, per (version id, revision): a
# revision never changes.
_CATALOGUES: "OrderedDict[tuple[uuid.UUID, int], dict[str, tuple[Aligned, ...]]]" = OrderedDict()
_CATALOGUES_MAX = 256
RESULT_RATER_ROLE = "external"


@dataclass(frozen=True, slots=True)
class Aligned:
    """A framework version's activity that an IRI names: what it develops, on which scale."""

    owner: uuid.UUID
    version_id: uuid.UUID
    activity: str
    competencies: tuple[str, ...]
    scale: tuple[int, ...]  # the version's scale values, ascending


@dataclass
class Outcome:
    """What one request's statements did."""

    ids: list[uuid.UUID]
    stored: int = 0
    replayed: int = 0
    completed: int = 0
    voided: int = 0
    unmapped: int = 0
    ratings: int = 0
    completions_removed: int = 0


@dataclass
class _Unmapped:
    line: dict[str, Any]
    count: int = 0
    seen: list[datetime] = field(default_factory=list)


def _catalogue(
    owner: uuid.UUID, version_id: uuid.UUID, content: dict[str, Any]
) -> dict[str, tuple[Aligned, ...]]:
    scale = tuple(sorted(int(point["value"]) for point in content.get("scale", [])))
    out: dict[str, list[Aligned]] = {}
    for act in content.get("activities", []):
        aligned = Aligned(owner, version_id, act["key"], tuple(sorted(act["develops"])), scale)
        for iri in [act.get("iri"), *act.get("alternative_iris", [])]:
            if iri:
                out.setdefault(iri, []).append(aligned)
    return {iri: tuple(found) for iri, found in out.items()}


async def activity_index(
    session: AsyncSession, versions: Sequence[tuple[uuid.UUID, uuid.UUID, int]]
) -> dict[str, list[Aligned]]:
    """Every activity IRI these published versions name, with the activities it stands for;
    documents are read only for versions not seen before."""
    merged: dict[str, list[Aligned]] = {}
    for owner, version_id, revision in versions:
        cache_key = (version_id, revision)
        catalogue = _CATALOGUES.get(cache_key)
        if catalogue is None:
            content = await repo.framework_content(session, owner, version_id)
            catalogue = _CATALOGUES[cache_key] = _catalogue(owner, version_id, content)
            if len(_CATALOGUES) > _CATALOGUES_MAX:
                _CATALOGUES.popitem(last=False)
        else:
            _CATALOGUES.move_to_end(cache_key)
        for iri, found in catalogue.items():
            merged.setdefault(iri, []).extend(found)
    return merged


def scaled_to_scale(scaled: float, scale: Sequence[int]) -> int:
    """A scaled score as a value of the scale: min + scaled × (max − min), then the nearest
    scale value (a tie goes to the higher one). A negative score (xAPI allows −1..1) counts as
    0, the scale's lowest value."""
    low, high = scale[0], scale[-1]
    target = low + max(scaled, 0.0) * (high - low)
    return min(scale, key=lambda value: (abs(value - target), -value))


def _subjects_for(known: repo.Known, actors: list[Actor | None]) -> dict[Actor, uuid.UUID]:
    """The subject each actor maps to, for those that map."""
    out: dict[Actor, uuid.UUID] = {}
    for a in actors:
        if a is None:
            continue
        if a.kind == "account" and a.home_page in known.home_pages and a.value in known.by_ref:
            out[a] = known.by_ref[a.value]
        elif a.mbox_sha1sum is not None and a.mbox_sha1sum in known.by_mbox:
            out[a] = known.by_mbox[a.mbox_sha1sum]
    return out


def _stored_form(st: Statement, principal: Principal, stored_at: datetime) -> dict[str, Any]:
    """The statement as the LRS keeps it: its id, stored time, authority and version set."""
    content = dict(st.content)
    content["id"] = str(st.id)
    content["stored"] = stored_at.isoformat().replace("+00:00", "Z")
    content.setdefault("timestamp", content["stored"])
    content.setdefault("version", "1.0.0")
    content["authority"] = {
        "objectType": "Agent",
        "account": {
            "homePage": AUTHORITY_HOME_PAGE,
            "name": principal.key_id.hex if principal.key_id else "service",
        },
    }
    return content


def _line_id(reason: str, actor: Actor | None, iri: str | None) -> str:
    text = "\x1f".join(
        [reason, actor.kind if actor else "", actor.label if actor else "", iri or ""]
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _refuse_changed(batch: Sequence[Statement], heads: dict[uuid.UUID, repo.StatementHead]) -> None:
    """409 for a statement id stored before with other content."""
    for st in batch:
        seen = heads.get(st.id)
        if seen is not None and seen.digest != st.digest:
            raise Conflict(
                f"Statement {st.id} was stored before with other content; a statement never "
                "changes (void it and send a new one)."
            )


async def receive(
    session: AsyncSession, principal: Principal, batch: list[Statement], *, unmapped_limit: int
) -> Outcome:
    """Store the statements and act on them, all or nothing: a statement id seen before with
    other content is a conflict and changes nothing; with the same content, a no-op. The
    unmapped report keeps at most ``unmapped_limit`` lines."""
    tenant_id = principal.tenant_id
    outcome = Outcome(ids=[st.id for st in batch])
    actors = [st.actor for st in batch]
    # The batch's ids, the statements it voids and what maps its actors, in one look.
    known = await repo.look_up(
        session,
        tenant_id,
        {st.id for st in batch} | {st.voids for st in batch if st.voids},
        {a.value for a in actors if a and a.kind == "account"},
        {a.mbox_sha1sum for a in actors if a and a.mbox_sha1sum},
    )
    heads = known.heads
    _refuse_changed(batch, heads)
    fresh = [st for st in batch if st.id not in heads]
    outcome.replayed = len(batch) - len(fresh)
    if not fresh:
        return outcome
    mapped = _subjects_for(known, [st.actor for st in fresh])
    now = utcnow()
    statement_rows = [
        {
            "tenant_id": tenant_id,
            "id": st.id,
            "digest": st.digest,
            "subject_id": mapped.get(st.actor) if st.actor else None,
            "verb": st.verb,
            "voids": st.voids,
            "voided": False,
            # Nothing of a statement about nobody known is kept but its id and digest.
            "content": _stored_form(st, principal, now) if st.actor in mapped else None,
            "stored_at": now,
        }
        for st in fresh
    ]
    stored = set(await repo.add_new(session, XapiStatement, statement_rows, "id"))
    if len(stored) < len(fresh):
        # A concurrent request stored some of these ids after our look: the insert waited for
        # it to commit, so its rows are visible now. Same content is a replay, other a 409.
        raced = {st.id for st in fresh} - stored
        _refuse_changed(fresh, await repo.statement_heads(session, tenant_id, raced))
        fresh = [st for st in fresh if st.id in stored]
        outcome.replayed = len(batch) - len(fresh)
    outcome.stored = len(fresh)
    rating = known.result_ratings
    acting = [
        st
        for st in fresh
        if st.object_type == "Activity"
        and (st.verb in COMPLETION_VERBS or (rating and st.scaled_score is not None))
    ]
    index = await activity_index(session, known.versions) if acting else {}
    completion_rows: list[dict[str, Any]] = []
    assessment_rows: list[dict[str, Any]] = []
    rating_rows: list[dict[str, Any]] = []
    to_void: set[uuid.UUID] = set()
    lines: dict[str, _Unmapped] = {}

    def note(reason: str, actor: Actor | None, iri: str | None) -> None:
        line_id = _line_id(reason, actor, iri)
        entry = lines.get(line_id)
        if entry is None:
            entry = lines[line_id] = _Unmapped(
                {
                    "tenant_id": tenant_id,
                    "id": line_id,
                    "reason": reason,
                    "actor_kind": actor.kind if actor else None,
                    "actor_id": actor.label if actor else None,
                    "actor_mbox_sha1sum": actor.mbox_sha1sum if actor else None,
                    "activity_iri": iri,
                }
            )
        entry.count += 1
        entry.seen.append(now)
        outcome.unmapped += 1

    batch_verbs = {st.id: st.verb for st in fresh}
    for st in fresh:
        if st.voids is not None:
            target = heads.get(st.voids)
            target_verb = target.verb if target else batch_verbs.get(st.voids)
            # A voiding statement cannot itself be voided; a statement is voided once.
            if target_verb is not None and target_verb != VOIDED and not (target and target.voided):
                to_void.add(st.voids)
    for st in acting:
        assert st.object_id is not None  # an Activity's IRI
        completes = st.verb in COMPLETION_VERBS
        subject_id = mapped.get(st.actor) if st.actor else None
        aligned = index.get(st.object_id, [])
        if completes and subject_id is None:
            note("unknown_actor", st.actor, st.object_id)
        elif completes and not aligned:
            note("unknown_activity", None, st.object_id)
        if subject_id is None or not aligned:
            continue
        at = st.timestamp or now
        if completes:
            # Skipped when already recorded: the first record keeps its provenance.
            completion_rows.extend(
                {
                    "tenant_id": tenant_id,
                    "subject_id": subject_id,
                    "activity_key": key,
                    "completed_at": at,
                    "created_at": now,
                    "statement_id": st.id,
                }
                for key in sorted({a.activity for a in aligned})
            )
        if rating and st.scaled_score is not None:
            for a in aligned:
                assessment_id = uuid.uuid4()
                assessment_rows.append(
                    {
                        "tenant_id": tenant_id,
                        "id": assessment_id,
                        "subject_id": subject_id,
                        "framework_tenant_id": a.owner,
                        "framework_version_id": a.version_id,
                        "rater_ref": f"xapi:{st.id}",
                        "rater_role": RESULT_RATER_ROLE,
                        # An assessment never lies in the future, whatever a clock said.
                        "assessed_at": min(at, now),
                        "created_at": now,
                        "sequence": time.time_ns() + len(assessment_rows),
                        "statement_id": st.id,
                    }
                )
                proficiency = scaled_to_scale(st.scaled_score, a.scale)
                rating_rows.extend(
                    {
                        "tenant_id": tenant_id,
                        "assessment_id": assessment_id,
                        "competency_key": key,
                        "proficiency": proficiency,
                        "evidence": f"xAPI statement {st.id}: result.score.scaled "
                        f"{st.scaled_score:g} on activity {a.activity}",
                        "confidence": None,
                    }
                    for key in a.competencies
                )
    # Ratings from results are assessments like any other: subscribers hear of them, and of
    # whose readiness they (or voiding the statements that made them) moved.
    rated = [
        (row["subject_id"], row["framework_tenant_id"], row["framework_version_id"])
        for row in assessment_rows
    ] + await repo.assessments_of_statements(session, tenant_id, to_void)
    news = await _ScoreEvents.taken(session, tenant_id, rated)
    outcome.completed = len(
        await repo.add_new(session, CompletedActivity, completion_rows, "activity_key")
    )
    inserted = set(await repo.add_new(session, Assessment, assessment_rows, "id"))
    outcome.ratings = len(await repo.add_new(session, Rating, rating_rows, "competency_key"))
    outcome.completions_removed = await repo.void(session, tenant_id, to_void)
    outcome.voided = len(to_void)
    if news is not None:
        ratings_per = Counter(row["assessment_id"] for row in rating_rows)
        await news.after(
            session,
            [
                (
                    row["id"],
                    row["subject_id"],
                    row["framework_version_id"],
                    row["assessed_at"],
                    ratings_per[row["id"]],
                )
                for row in assessment_rows
                if row["id"] in inserted
            ],
        )
    if lines:
        grown = await repo.count_unmapped(
            session,
            [
                {
                    **entry.line,
                    "statements": entry.count,
                    "first_seen_at": min(entry.seen),
                    "last_seen_at": max(entry.seen),
                }
                for entry in lines.values()
            ],
        )
        if grown:
            await repo.trim_unmapped(session, tenant_id, unmapped_limit)
    record(
        session,
        principal,
        "xapi.statements_received",
        "xapi_statement",
        str(fresh[0].id) if fresh else str(batch[0].id),
        {
            "stored": outcome.stored,
            "replayed": outcome.replayed,
            "completed": outcome.completed,
            "ratings": outcome.ratings,
            "voided": outcome.voided,
            "unmapped": outcome.unmapped,
        },
    )
    await session.flush()
    return outcome


@dataclass
class _ScoreEvents:
    """The webhook events of ratings a request's statements add or void: ``assessment.created``
    for each new assessment, ``readiness.changed`` for each person who moved (scored before and
    after, against the versions rated, as for assessments posted to the API)."""

    tenant_id: uuid.UUID
    versions: dict[uuid.UUID, frameworks.ResolvedVersion]
    snapshots: list[events.Snapshot]
    watchers: list[WebhookSubscription]

    @classmethod
    async def taken(
        cls,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        rated: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID]],
    ) -> "_ScoreEvents | None":
        """Where the people stand before the write (None: no ratings added or voided)."""
        if not rated:
            return None
        versions: dict[uuid.UUID, frameworks.ResolvedVersion] = {}
        people: dict[uuid.UUID, set[uuid.UUID]] = {}
        for subject_id, owner, version_id in rated:
            if version_id not in versions:
                versions[version_id] = await _resolved(session, owner, version_id)
            people.setdefault(version_id, set()).add(subject_id)
        watchers = await events.readiness_watchers(session, tenant_id)
        snapshots = [
            await events.snapshot(session, tenant_id, versions[v], sorted(ids))
            for v, ids in people.items()
            if watchers
        ]
        return cls(tenant_id, versions, snapshots, list(watchers))

    async def after(
        self,
        session: AsyncSession,
        created: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID, datetime, int]],
    ) -> None:
        """Enqueue the events, once the ratings are written (in the same transaction)."""
        if created:
            refs = await subjects_repo.refs_and_tracks(
                session, self.tenant_id, sorted({subject for _, subject, *_ in created})
            )
            await webhooks.enqueue(
                session,
                self.tenant_id,
                "assessment.created",
                [
                    events.assessment_created(
                        assessment_id,
                        refs[subject][0],
                        self.versions[version],
                        RESULT_RATER_ROLE,
                        at,
                        ratings,
                    )
                    for assessment_id, subject, version, at, ratings in created
                ],
                subject_ids=[subject for _, subject, *_ in created],
            )
        for snapshot in self.snapshots:
            await events.readiness_changed(session, self.tenant_id, snapshot, self.watchers)


async def _resolved(
    session: AsyncSession, owner: uuid.UUID, version_id: uuid.UUID
) -> frameworks.ResolvedVersion:
    version = await frameworks_repo.version_by_id(session, owner, version_id)
    assert version is not None  # rated against it in this transaction, or before
    framework = await session.get(Framework, (owner, version.framework_id))
    assert framework is not None
    return frameworks.ResolvedVersion(framework, version)


async def statement(
    session: AsyncSession, principal: Principal, statement_id: uuid.UUID, *, voided: bool
) -> dict[str, Any]:
    """A stored statement by id (``voided``: only if voided, as xAPI's voidedStatementId)."""
    row = await repo.statement(session, principal.tenant_id, statement_id)
    if row is None or row.content is None or row.voided != voided:
        what = "voided statement" if voided else "statement"
        raise NotFound(
            f"No {what} {statement_id} is kept here (statements about nobody this tenant maps "
            "are acknowledged but not kept; a voided statement is read by voidedStatementId)."
        )
    return dict(row.content)


async def get_settings(session: AsyncSession, principal: Principal) -> LearningRecordSettings:
    """The tenant's settings (none saved: empty)."""
    saved = await repo.settings(session, principal.tenant_id)
    return saved or LearningRecordSettings(
        tenant_id=principal.tenant_id, account_home_pages=[], result_ratings=False
    )


async def put_settings(
    session: AsyncSession, principal: Principal, home_pages: list[str], *, result_ratings: bool
) -> LearningRecordSettings:
    """Replace the account homePages actors are mapped by, and the opt-in to ratings from
    results."""
    saved = await repo.settings(session, principal.tenant_id)
    if saved is None:
        saved = LearningRecordSettings(tenant_id=principal.tenant_id)
    saved.account_home_pages = home_pages
    saved.result_ratings = result_ratings
    saved.updated_at = utcnow()
    session.add(saved)
    record(
        session,
        principal,
        "learning_records.settings_changed",
        "tenant",
        str(principal.tenant_id),
        {"account_home_pages": len(home_pages), "result_ratings": result_ratings},
    )
    await session.flush()
    return saved


async def register_mbox(
    session: AsyncSession, principal: Principal, ref: str, sha1: str
) -> LearningRecordAgent:
    """Map a mailbox (by its SHA-1) to a subject; one mailbox names one person. Registering
    it again for the same person changes nothing, also when two requests do it at once."""
    subject = await subjects.get(session, principal, ref)
    held = await repo.agent(session, principal.tenant_id, sha1)
    if held is None:
        row = LearningRecordAgent(
            tenant_id=principal.tenant_id, mbox_sha1sum=sha1, subject_id=subject.id
        )
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # A concurrent registration of the mailbox committed first: answer as after it.
            held = await repo.agent(session, principal.tenant_id, sha1)
            if held is None:
                raise
        else:
            record(
                session, principal, "learning_records.mbox_registered", "subject", str(subject.id)
            )
            await session.flush()
            return row
    if held.subject_id != subject.id:
        raise Conflict("This mailbox is registered for another subject.")
    return held


async def mboxes(session: AsyncSession, principal: Principal, ref: str) -> list[str]:
    """The SHA-1 sums of the mailboxes registered for a subject."""
    subject = await subjects.get(session, principal, ref)
    return sorted(
        a.mbox_sha1sum for a in await repo.agents_of(session, principal.tenant_id, subject.id)
    )


async def unmapped_report(session: AsyncSession, principal: Principal) -> list[XapiUnmapped]:
    """The tenant's unmapped report, most recently seen first."""
    return await repo.unmapped(session, principal.tenant_id)
