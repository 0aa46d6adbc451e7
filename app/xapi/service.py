"""Learning-record use cases: store statements, act on them, report what cannot be mapped.

Actors map to subjects by one rule: an ``account`` whose ``homePage`` the tenant registered and
whose ``name`` is the subject's ``external_ref``; or a mailbox (``mbox``, or its
``mbox_sha1sum``) registered for the subject. A statement with a completion verb (ADL
``completed``, ``passed`` or ``mastered``) about an activity whose IRI a visible framework names
records that activity as completed, with the statement's id as provenance; ``voided`` undoes
what the voided statement recorded; every other verb (``failed`` among them) records nothing.
"""

import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.repository import record
from app.auth.principal import Principal
from app.errors import Conflict, NotFound
from app.models import (
    CompletedActivity,
    LearningRecordAgent,
    LearningRecordSettings,
    XapiStatement,
    XapiUnmapped,
    utcnow,
)
from app.subjects import service as subjects
from app.xapi import repository as repo
from app.xapi.statements import COMPLETION_VERBS, VOIDED, Actor, Statement

# The authority the service names on statements it stores: the API key that sent them.
AUTHORITY_HOME_PAGE = "https://competency-ladder.dev/api-keys"

# Activity IRI -> activity keys, per (framework version id, revision): a revision never changes.
_IRI_INDEX: "OrderedDict[tuple[uuid.UUID, int], dict[str, frozenset[str]]]" = OrderedDict()
_IRI_INDEX_MAX = 256


@dataclass
class Outcome:
    """What one request's statements did."""

    ids: list[uuid.UUID]
    stored: int = 0
    replayed: int = 0
    completed: int = 0
    voided: int = 0
    unmapped: int = 0
    completions_removed: int = 0


@dataclass
class _Unmapped:
    line: dict[str, Any]
    count: int = 0
    seen: list[datetime] = field(default_factory=list)


def _index(activities: Sequence[dict[str, Any]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for act in activities:
        for iri in [act.get("iri"), *act.get("alternative_iris", [])]:
            if iri:
                out.setdefault(iri, set()).add(act["key"])
    return {iri: frozenset(keys) for iri, keys in out.items()}


async def activity_index(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, set[str]]:
    """Every activity IRI the tenant's published frameworks (and the built-in ones) name, with
    the activity keys it stands for; documents are read only for versions not seen before."""
    merged: dict[str, set[str]] = {}
    for owner, version_id, revision in await repo.published_versions(session, tenant_id):
        cache_key = (version_id, revision)
        index = _IRI_INDEX.get(cache_key)
        if index is None:
            index = _index(await repo.activities_of(session, owner, version_id))
            _IRI_INDEX[cache_key] = index
            if len(_IRI_INDEX) > _IRI_INDEX_MAX:
                _IRI_INDEX.popitem(last=False)
        else:
            _IRI_INDEX.move_to_end(cache_key)
        for iri, keys in index.items():
            merged.setdefault(iri, set()).update(keys)
    return merged


async def _subjects_for(
    session: AsyncSession, tenant_id: uuid.UUID, actors: list[Actor | None]
) -> dict[Actor, uuid.UUID]:
    """The subject each actor maps to, for those that map."""
    saved = await repo.settings(session, tenant_id)
    home_pages = set(saved.account_home_pages) if saved else set()
    accounts = {a for a in actors if a and a.kind == "account" and a.home_page in home_pages}
    mailboxes = {a for a in actors if a and a.mbox_sha1sum is not None}
    by_ref = await repo.subjects_by_ref(session, tenant_id, {a.value for a in accounts})
    by_sum = await repo.subjects_by_mbox(
        session, tenant_id, {a.mbox_sha1sum for a in mailboxes if a.mbox_sha1sum}
    )
    out: dict[Actor, uuid.UUID] = {}
    for a in accounts:
        if a.value in by_ref:
            out[a] = by_ref[a.value]
    for a in mailboxes:
        if a.mbox_sha1sum in by_sum:
            out[a] = by_sum[a.mbox_sha1sum]
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


async def receive(
    session: AsyncSession, principal: Principal, batch: list[Statement], *, unmapped_limit: int
) -> Outcome:
    """Store the statements and act on them, all or nothing: a statement id seen before with
    other content is a conflict and changes nothing; with the same content, a no-op. The
    unmapped report keeps at most ``unmapped_limit`` lines."""
    tenant_id = principal.tenant_id
    outcome = Outcome(ids=[st.id for st in batch])
    # The batch's ids and the statements it voids, in one look.
    referenced = {st.id for st in batch} | {st.voids for st in batch if st.voids}
    heads = await repo.statement_heads(session, tenant_id, referenced)
    known = {st.id: heads[st.id] for st in batch if st.id in heads}
    for st in batch:
        seen = known.get(st.id)
        if seen is not None and seen.digest != st.digest:
            raise Conflict(
                f"Statement {st.id} was stored before with other content; a statement never "
                "changes (void it and send a new one)."
            )
    fresh = [st for st in batch if st.id not in known]
    outcome.replayed = len(batch) - len(fresh)
    if not fresh:
        return outcome
    mapped = await _subjects_for(session, tenant_id, [st.actor for st in fresh])
    actionable = [
        st for st in fresh if st.verb in COMPLETION_VERBS and st.object_type == "Activity"
    ]
    actionable_ids = {st.id for st in actionable}
    index = await activity_index(session, tenant_id) if actionable else {}
    done = await repo.completed_pairs(
        session, tenant_id, {mapped[st.actor] for st in actionable if st.actor in mapped}
    )
    now = utcnow()
    statement_rows: list[dict[str, Any]] = []
    completion_rows: list[dict[str, Any]] = []
    to_void: set[uuid.UUID] = set()
    lines: dict[str, _Unmapped] = {}

    def note(reason: str, actor: Actor | None, iri: str | None, at: datetime) -> None:
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
        entry.seen.append(at)
        outcome.unmapped += 1

    batch_verbs = {st.id: st.verb for st in fresh}
    for st in fresh:
        subject_id = mapped.get(st.actor) if st.actor else None
        statement_rows.append(
            {
                "tenant_id": tenant_id,
                "id": st.id,
                "digest": st.digest,
                "subject_id": subject_id,
                "verb": st.verb,
                "voids": st.voids,
                "voided": False,
                # Nothing of a statement about nobody known is kept but its id and digest.
                "content": _stored_form(st, principal, now) if subject_id else None,
                "stored_at": now,
            }
        )
        if st.voids is not None:
            target = heads.get(st.voids)
            target_verb = target.verb if target else batch_verbs.get(st.voids)
            # A voiding statement cannot itself be voided; a statement is voided once.
            if target_verb is not None and target_verb != VOIDED and not (target and target.voided):
                to_void.add(st.voids)
            continue
        if st.id not in actionable_ids:
            continue
        assert st.object_id is not None  # an Activity's IRI
        if subject_id is None:
            note("unknown_actor", st.actor, st.object_id, now)
            continue
        keys = index.get(st.object_id)
        if not keys:
            note("unknown_activity", None, st.object_id, now)
            continue
        for key in sorted(keys):
            if (subject_id, key) in done:
                continue  # already recorded: the first record keeps its provenance
            done.add((subject_id, key))
            completion_rows.append(
                {
                    "tenant_id": tenant_id,
                    "subject_id": subject_id,
                    "activity_key": key,
                    "completed_at": st.timestamp or now,
                    "created_at": now,
                    "statement_id": st.id,
                }
            )
            outcome.completed += 1
    await repo.add_new(session, XapiStatement, statement_rows)
    await repo.add_new(session, CompletedActivity, completion_rows)
    outcome.completions_removed = await repo.void(session, tenant_id, to_void)
    outcome.voided = len(to_void)
    outcome.stored = len(fresh)
    if lines:
        await _report(session, tenant_id, lines, unmapped_limit)
    record(
        session,
        principal,
        "xapi.statements_received",
        "xapi_statement",
        str(fresh[0].id),
        {
            "stored": outcome.stored,
            "replayed": outcome.replayed,
            "completed": outcome.completed,
            "voided": outcome.voided,
            "unmapped": outcome.unmapped,
        },
    )
    await session.flush()
    return outcome


async def _report(
    session: AsyncSession, tenant_id: uuid.UUID, lines: dict[str, _Unmapped], limit: int
) -> None:
    counted = await repo.unmapped_counts(session, tenant_id, set(lines))
    more = [
        {
            "t": tenant_id,
            "line": line_id,
            "more": entry.count,
            "seen": max(entry.seen),
        }
        for line_id, entry in lines.items()
        if line_id in counted
    ]
    new_rows = [
        {
            **entry.line,
            "statements": entry.count,
            "first_seen_at": min(entry.seen),
            "last_seen_at": max(entry.seen),
        }
        for line_id, entry in lines.items()
        if line_id not in counted
    ]
    await repo.count_more(session, more)
    if new_rows:
        await repo.add_new(session, XapiUnmapped, new_rows)
        await repo.trim_unmapped(session, tenant_id, limit)


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
    return saved or LearningRecordSettings(tenant_id=principal.tenant_id, account_home_pages=[])


async def put_settings(
    session: AsyncSession, principal: Principal, home_pages: list[str]
) -> LearningRecordSettings:
    """Replace the account homePages actors are mapped by."""
    saved = await repo.settings(session, principal.tenant_id)
    if saved is None:
        saved = LearningRecordSettings(tenant_id=principal.tenant_id)
    saved.account_home_pages = home_pages
    saved.updated_at = utcnow()
    session.add(saved)
    record(
        session,
        principal,
        "learning_records.settings_changed",
        "tenant",
        str(principal.tenant_id),
        {"account_home_pages": len(home_pages)},
    )
    await session.flush()
    return saved


async def register_mbox(
    session: AsyncSession, principal: Principal, ref: str, sha1: str
) -> LearningRecordAgent:
    """Map a mailbox (by its SHA-1) to a subject; one mailbox names one person."""
    subject = await subjects.get(session, principal, ref)
    held = await repo.agent(session, principal.tenant_id, sha1)
    if held is not None:
        if held.subject_id != subject.id:
            raise Conflict("This mailbox is registered for another subject.")
        return held
    row = LearningRecordAgent(
        tenant_id=principal.tenant_id, mbox_sha1sum=sha1, subject_id=subject.id
    )
    session.add(row)
    record(session, principal, "learning_records.mbox_registered", "subject", str(subject.id))
    await session.flush()
    return row


async def mboxes(session: AsyncSession, principal: Principal, ref: str) -> list[str]:
    """The SHA-1 sums of the mailboxes registered for a subject."""
    subject = await subjects.get(session, principal, ref)
    return sorted(
        a.mbox_sha1sum for a in await repo.agents_of(session, principal.tenant_id, subject.id)
    )


async def unmapped_report(session: AsyncSession, principal: Principal) -> list[XapiUnmapped]:
    """The tenant's unmapped report, most recently seen first."""
    return await repo.unmapped(session, principal.tenant_id)
