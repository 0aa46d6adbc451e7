"""Domain events for webhooks: assessment.created, readiness.changed and calibration.closed,
and their payloads.

readiness.changed compares each affected subject's score before and after the write, using the
vectorized cohort path, so a bulk import costs two matrix evaluations, not one per person.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.frameworks import evolution
from app.frameworks import repository as frameworks_repo
from app.frameworks import service as frameworks
from app.models import WebhookSubscription, utcnow
from app.scores import service as scores
from app.scoring import ScoringError
from app.scoring.cohort import score_cohort
from app.subjects import repository as subjects_repo
from app.webhooks import service

READINESS_DIGITS = 4


def assessment_created(
    assessment_id: uuid.UUID,
    subject_ref: str,
    resolved: frameworks.ResolvedVersion,
    rater_role: str,
    assessed_at: datetime,
    ratings: int,
) -> dict[str, Any]:
    """The assessment.created payload: ids and counts, never evidence text."""
    return {
        "assessment_id": str(assessment_id),
        "subject_ref": subject_ref,
        "framework": {"key": resolved.framework.key, "version": resolved.version.version},
        "rater_role": rater_role,
        "assessed_at": assessed_at.isoformat(),
        "ratings": ratings,
    }


def calibration_closed(
    session_id: uuid.UUID,
    resolved: frameworks.ResolvedVersion,
    closed_at: datetime,
    assessments: int,
    ratings: int,
) -> dict[str, Any]:
    """The calibration.closed payload: the session's id and counts, naming no one (each
    person's calibrated assessment has its own assessment.created event)."""
    return {
        "session_id": str(session_id),
        "framework": {"key": resolved.framework.key, "version": resolved.version.version},
        "closed_at": closed_at.isoformat(),
        "assessments": assessments,
        "ratings": ratings,
    }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Where some subjects stand against one framework version at one moment."""

    resolved: frameworks.ResolvedVersion
    subject_ids: list[uuid.UUID]
    refs: list[str]
    standing: list[dict[str, Any]]


async def readiness_watchers(
    session: AsyncSession, tenant_id: uuid.UUID
) -> list[WebhookSubscription]:
    """Subscriptions that want readiness.changed (empty: skip the before/after scoring)."""
    return await service.subscribers(session, tenant_id, "readiness.changed")


async def snapshot(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    resolved: frameworks.ResolvedVersion,
    subject_ids: Sequence[uuid.UUID],
) -> Snapshot:
    """Score the subjects as of now against the version's framework."""
    ids = sorted(set(subject_ids))
    rows = await subjects_repo.refs_and_tracks(session, tenant_id, ids)
    ids = [i for i in ids if i in rows]
    fw = frameworks.compiled(resolved.version)
    now = utcnow()
    versions = await frameworks_repo.versions_of(session, resolved.framework)
    row = resolved.version  # ratings of older versions go through their maps, as in scores
    chain = await evolution.chain_for(
        session, row.tenant_id, row.framework_id, row.id, row.revision, row.version
    )
    window = (now - timedelta(days=fw.settings.window_days), now + timedelta(minutes=10))
    ratings = await evolution.cohort_ratings(
        session,
        tenant_id,
        ids,
        [(v.tenant_id, v.id) for v in versions],
        [c.key for c in fw.competencies],
        chain,
        *window,
    )
    # Scores as the API gives them: adjusted by recorded rater effects when the version applies them.
    adjustment = await scores.cohort_rater_adjustment(
        session, tenant_id, fw, row.id, ratings, ids, window
    )
    if adjustment is not None:
        ratings = adjustment.ratings
    standing: list[dict[str, Any]] = []
    try:
        result = score_cohort(
            fw, ratings, as_of=now + timedelta(minutes=10), tracks=[rows[i][1] for i in ids]
        )
    except ScoringError:
        return Snapshot(
            resolved, ids, [rows[i][0] for i in ids], [{} for _ in ids]
        )  # unknown track: no signal
    keys = [lv.key for lv in fw.levels]
    for n in range(len(ids)):
        nxt = int(result.next_level[n])
        standing.append(
            {
                "attained_level": keys[int(result.attained[n])]
                if result.attained[n] >= 0
                else None,
                "next_level": keys[nxt] if nxt >= 0 else None,
                "readiness_next": round(float(result.readiness[n, nxt]), READINESS_DIGITS)
                if nxt >= 0
                else None,
                "level_index": round(float(result.level_index[n]), READINESS_DIGITS),
            }
        )
    return Snapshot(resolved, ids, [rows[i][0] for i in ids], standing)


async def readiness_changed(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    before: Snapshot,
    watchers: Sequence[WebhookSubscription],
) -> int:
    """Compare with a fresh snapshot and enqueue readiness.changed for every subject that moved."""
    after = await snapshot(session, tenant_id, before.resolved, before.subject_ids)
    old = dict(zip(before.subject_ids, before.standing, strict=True))
    payloads = []
    about: list[uuid.UUID | None] = []
    for subject_id, ref, now in zip(after.subject_ids, after.refs, after.standing, strict=True):
        was = old.get(subject_id, {})
        if (
            now
            and was != now
            and (
                was.get("attained_level") != now["attained_level"]
                or was.get("readiness_next") != now["readiness_next"]
            )
        ):
            payloads.append(
                {
                    "subject_ref": ref,
                    "framework": {
                        "key": before.resolved.framework.key,
                        "version": before.resolved.version.version,
                    },
                    "before": was,
                    "after": now,
                }
            )
            about.append(subject_id)
    return await service.enqueue(
        session, tenant_id, "readiness.changed", payloads, watchers, subject_ids=about
    )
