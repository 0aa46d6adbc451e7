"""Calibration session use cases: take a snapshot, collect proposals, close (write them as
``calibrated`` ratings in one transaction), export the grid, import proposals from CSV."""

import csv
import io
import math
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from app import csv_output
from app.assessments.schemas import FrameworkRef
from app.audit.repository import record
from app.auth.principal import Principal
from app.calibration import service as effects_service
from app.calibration import sessions_repository as repo
from app.calibration import sessions_schemas as s
from app.calibration.schemas import RaterEffectsRequest, RaterEffectsResponse, SelfFacet
from app.cohorts import service as cohorts
from app.cohorts.schemas import CohortFilter
from app.csv_output import FORMULA_STARTS
from app.errors import Conflict, FieldError, InvalidInput, NotFound
from app.frameworks import service as frameworks
from app.models import (
    Assessment,
    CalibrationMember,
    CalibrationProposal,
    CalibrationSession,
    Rating,
    utcnow,
)
from app.scores import service as scores
from app.scoring import Framework
from app.scoring.cohort import score_cohort
from app.webhooks import events
from app.webhooks import service as webhooks

CALIBRATED_ROLE = "calibrated"
GRID_COLUMNS = (
    "subject_ref",
    "competency",
    "current_value",
    "fair_value",
    "proposed_value",
    "reason",
    "proposer",
)
IMPORT_REQUIRED = ("subject_ref", "competency", "proposed_value", "reason")
MAX_IMPORT_ROWS = 100_000
DIGITS = 6


def rater_ref(session_id: uuid.UUID) -> str:
    """The rater a closed session's calibrated ratings are recorded under (their provenance)."""
    return f"calibration-session:{session_id}"


def _actor(principal: Principal) -> str:
    return str(principal.key_id) if principal.key_id is not None else "system"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), DIGITS)


async def _session(
    session: AsyncSession, principal: Principal, session_id: uuid.UUID, lock: bool = False
) -> CalibrationSession:
    """The tenant's session; another tenant's is a 404 like an unknown one."""
    row = await repo.get(session, principal.tenant_id, session_id, lock=lock)
    if row is None:
        raise NotFound(f"No calibration session {session_id} in this tenant.")
    return row


def _open(row: CalibrationSession) -> None:
    """A closed session never changes."""
    if row.status != "open":
        raise Conflict(f"Calibration session {row.id} is closed; it no longer changes.")


async def create(
    session: AsyncSession, principal: Principal, body: s.SessionCreate
) -> s.SessionRead:
    """Take the snapshot: each person's score, rater effects with each rater's distribution."""
    resolved = await frameworks.resolve(
        session, principal, body.framework.key, body.framework.version
    )
    if resolved.version.status == "draft":
        msg = "a calibration session pins a published version, not a draft"
        raise InvalidInput(
            msg, errors=[FieldError(loc=["body", "framework", "version"], msg=msg, type="draft")]
        )
    ref = FrameworkRef(key=resolved.framework.key, version=resolved.version.version)
    as_of = body.as_of or utcnow()
    filt = body.filter or CohortFilter()
    cohort = await cohorts.load(
        session, principal, ref, body.subject_refs, filt, as_of, body.window_days
    )
    if cohort.unknown_refs:
        unknown = set(cohort.unknown_refs)
        raise InvalidInput(
            f"{len(unknown)} unknown subject ref(s); every ref of a session must be known.",
            errors=[
                FieldError(loc=["body", "subject_refs", i], msg=f"no subject {r!r}", type="unknown")
                for i, r in enumerate(body.subject_refs or [])
                if r in unknown
            ][:1000],
        )
    if not cohort.subjects.ids:
        msg = "the scope holds nobody who can be scored against this version"
        raise InvalidInput(msg, errors=[FieldError(loc=["body"], msg=msg, type="empty")])
    fw = cohort.framework
    # Scores as the API gives them: adjusted by recorded rater effects when the version applies them.
    adjustment = await scores.cohort_rater_adjustment(
        session,
        principal.tenant_id,
        fw,
        cohort.version_id,
        cohort.ratings,
        cohort.subjects.ids,
        (cohort.window_start, as_of),
    )
    ratings = adjustment.ratings if adjustment else cohort.ratings
    result = score_cohort(fw, ratings, as_of=as_of, tracks=cohort.subjects.tracks)
    request = RaterEffectsRequest(
        framework=ref,
        subject_refs=body.subject_refs,
        filter=body.filter,
        as_of=as_of,
        window_days=body.window_days,
        thresholds=body.thresholds,
        include_fair_averages=True,
    )
    # The same cohort as of the same moment: fitted as it was loaded above, not read again.
    answer = (await effects_service.answer(session, principal, request, cohort)).model()
    fair = {p.subject_ref: p for p in answer.fair_averages.people} if answer.fair_averages else {}
    row = CalibrationSession(
        tenant_id=principal.tenant_id,
        name=body.name,
        framework_tenant_id=resolved.version.tenant_id,
        framework_version_id=resolved.version.id,
        framework_key=fw.key,
        framework_version=fw.version,
        as_of=as_of,
        window_days=answer.window_days,
        scope=body.filter.model_dump(mode="json") if body.filter is not None else {},
        rater_effects=_shared_part(answer).model_dump(mode="json"),
        created_by=_actor(principal),
    )
    session.add(row)
    await session.flush()
    keys = [lv.key for lv in fw.levels]
    members = []
    for i, (subject_id, subject_ref) in enumerate(
        zip(cohort.subjects.ids, cohort.subjects.refs, strict=True)
    ):
        person = fair.get(subject_ref)
        attained, nxt = int(result.attained[i]), int(result.next_level[i])
        members.append(
            {
                "tenant_id": principal.tenant_id,
                "session_id": row.id,
                "subject_id": subject_id,
                "subject_ref": subject_ref,
                "position": i,
                "attained_level": keys[attained] if attained >= 0 else None,
                "next_level": keys[nxt] if nxt >= 0 else None,
                "level_index": round(float(result.level_index[i]), DIGITS),
                "readiness": {
                    k: round(float(result.readiness[i, j]), DIGITS) for j, k in enumerate(keys)
                },
                "values": [_number(v) for v in result.values[i].tolist()],
                "fair_values": list(person.fair_values) if person else [],
                "fair_level_index": person.fair_level_index if person else None,
            }
        )
    await repo.add_members(session, members)
    record(
        session,
        principal,
        "calibration_session.created",
        "calibration_session",
        str(row.id),
        {"people": len(members), "framework": fw.key, "version": fw.version},
    )
    await session.flush()
    return await get(session, principal, row.id)


def _shared_part(answer: RaterEffectsResponse) -> RaterEffectsResponse:
    """The rater-effects answer without its per-person parts (kept as members instead, so
    erasing a person removes them): no fair averages, self rows, unknown or skipped refs."""
    return answer.model_copy(
        update={
            "fair_averages": None,
            "unknown_refs": [],
            "skipped": [],
            "self_ratings": SelfFacet(
                effect=answer.self_ratings.effect,
                standard_error=answer.self_ratings.standard_error,
                people=[],
            ),
        }
    )


def _summary(row: CalibrationSession, people: int, proposals: int) -> s.SessionSummary:
    return s.SessionSummary(
        id=row.id,
        name=row.name,
        framework=FrameworkRef(key=row.framework_key, version=row.framework_version),
        as_of=row.as_of,
        window_days=row.window_days,
        status=row.status,  # type: ignore[arg-type]
        people=people,
        proposals=proposals,
        calibrated_ratings=row.calibrated_ratings,
        created_by=row.created_by,
        created_at=row.created_at,
        closed_by=row.closed_by,
        closed_at=row.closed_at,
    )


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[s.SessionSummary]:
    rows = await repo.page(session, principal.tenant_id, limit=limit, after=after)
    counted = await repo.counts(session, principal.tenant_id, [r.id for r in rows])
    return [_summary(r, *counted[r.id]) for r in rows]


async def get(session: AsyncSession, principal: Principal, session_id: uuid.UUID) -> s.SessionRead:
    """The session with its snapshot."""
    row = await _session(session, principal, session_id)
    members = await repo.members(session, principal.tenant_id, row.id)
    people, proposals = (await repo.counts(session, principal.tenant_id, [row.id]))[row.id]
    effects = RaterEffectsResponse.model_validate(row.rater_effects)
    return s.SessionRead(
        **_summary(row, people, proposals).model_dump(),
        scope=CohortFilter.model_validate(row.scope) if row.scope else None,
        competencies=[a.competency for a in effects.agreement],
        members=[
            s.Member(
                subject_ref=m.subject_ref,
                attained_level=m.attained_level,
                next_level=m.next_level,
                level_index=m.level_index,
                readiness=m.readiness,
                values=m.values,
                fair_values=m.fair_values,
                fair_level_index=m.fair_level_index,
            )
            for m in members
        ],
        rater_effects=effects,
    )


async def rater_effects(
    session: AsyncSession, principal: Principal, session_id: uuid.UUID
) -> RaterEffectsResponse:
    """The rater effects as they were when the snapshot was taken."""
    row = await _session(session, principal, session_id)
    return RaterEffectsResponse.model_validate(row.rater_effects)


async def _framework(
    session: AsyncSession, principal: Principal, row: CalibrationSession
) -> tuple[frameworks.ResolvedVersion, Framework]:
    resolved = await frameworks.resolve(
        session, principal, row.framework_key, row.framework_version
    )
    return resolved, frameworks.compiled(resolved.version)


def _proposal_errors(
    items: Sequence[tuple[list[str | int], s.ProposalCreate]],
    members: dict[str, CalibrationMember],
    fw: Framework,
    scale: frozenset[int],
) -> list[FieldError]:
    """Every proposal naming someone outside the snapshot, a competency outside the version,
    or a value off its scale, with the path of the offending field."""
    competencies = {c.key for c in fw.competencies}
    errors = []
    for loc, item in items:
        if item.subject_ref not in members:
            errors.append(
                FieldError(
                    loc=[*loc, "subject_ref"],
                    msg=f"{item.subject_ref!r} is not in this session's snapshot",
                    type="not_in_session",
                )
            )
        if item.competency not in competencies:
            errors.append(
                FieldError(
                    loc=[*loc, "competency"],
                    msg=f"unknown competency {item.competency!r} in {fw.key} v{fw.version}",
                    type="unknown_reference",
                )
            )
        if item.value not in scale:
            errors.append(
                FieldError(
                    loc=[*loc, "value"],
                    msg=f"{item.value} is not on the scale {sorted(scale)}",
                    type="out_of_scale",
                )
            )
    return errors


async def _record_proposals(
    session: AsyncSession,
    principal: Principal,
    row: CalibrationSession,
    items: Sequence[tuple[list[str | int], s.ProposalCreate]],
    default_proposer: str | None = None,
) -> list[tuple[CalibrationProposal, CalibrationMember, bool]]:
    """Validate every item, then upsert each on (person, competency); nothing on any error."""
    resolved, fw = await _framework(session, principal, row)
    members = await repo.member_by_ref(
        session, principal.tenant_id, row.id, sorted({i.subject_ref for _, i in items})
    )
    errors = _proposal_errors(items, members, fw, frameworks.scale_values(resolved.version))
    if errors:
        raise InvalidInput(
            f"{len(errors)} invalid field(s) in the proposals; nothing was stored.",
            errors=errors[:1000],
        )
    existing = {
        (p.subject_id, p.competency_key): p
        for p, _ in await repo.proposals(session, principal.tenant_id, row.id)
    }
    now = utcnow()
    stored = []
    for _, item in items:
        member = members[item.subject_ref]
        proposer = item.proposer or default_proposer or _actor(principal)
        found = existing.get((member.subject_id, item.competency))
        created = found is None
        if found is None:
            found = CalibrationProposal(
                tenant_id=principal.tenant_id,
                session_id=row.id,
                subject_id=member.subject_id,
                competency_key=item.competency,
                value=item.value,
                reason=item.reason,
                proposer=proposer,
                created_at=now,
                updated_at=now,
            )
        elif (found.value, found.reason, found.proposer, found.withdrawn_at) != (
            item.value,
            item.reason,
            proposer,
            None,
        ):
            found.value, found.reason, found.proposer = item.value, item.reason, proposer
            found.withdrawn_at, found.updated_at = None, now
        session.add(found)
        stored.append((found, member, created))
    # Ids and counts only: the reason is about the person and goes with them.
    details: dict[str, Any] = {"proposals": len(stored)}
    if len(stored) == 1:
        details |= {
            "subject_id": str(stored[0][1].subject_id),
            "competency": items[0][1].competency,
        }
    record(
        session,
        principal,
        "calibration_proposal.recorded",
        "calibration_session",
        str(row.id),
        details,
    )
    await session.flush()
    return stored


def _proposal_read(p: CalibrationProposal, m: CalibrationMember, fw: Framework) -> s.ProposalRead:
    keys = [c.key for c in fw.competencies]
    j = keys.index(p.competency_key)
    return s.ProposalRead(
        subject_ref=m.subject_ref,
        competency=p.competency_key,
        value=p.value,
        current_value=m.values[j] if j < len(m.values) else None,
        reason=p.reason,
        proposer=p.proposer,
        status="withdrawn" if p.withdrawn_at is not None else "standing",
        created_at=p.created_at,
        updated_at=p.updated_at,
        withdrawn_at=p.withdrawn_at,
    )


async def propose(
    session: AsyncSession, principal: Principal, session_id: uuid.UUID, body: s.ProposalCreate
) -> tuple[s.ProposalRead, bool]:
    """Record (or replace) one proposal; returns it and whether it is new."""
    row = await _session(session, principal, session_id, lock=True)
    _open(row)
    [(stored, member, created)] = await _record_proposals(
        session, principal, row, [(["body"], body)]
    )
    _, fw = await _framework(session, principal, row)
    return _proposal_read(stored, member, fw), created


async def import_proposals(
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    raw: bytes,
    default_proposer: str | None = None,
) -> s.ProposalImport:
    """Proposals from a CSV grid: every row with a proposed value, all or nothing (rows
    without a proposer are the caller's: ``default_proposer``, else the API key's id)."""
    row = await _session(session, principal, session_id, lock=True)
    _open(row)
    items, rows = parse_csv(raw)
    if items:
        await _record_proposals(session, principal, row, items, default_proposer)
    return s.ProposalImport(rows=rows, proposed=len(items), unchanged=rows - len(items))


def parse_csv(raw: bytes) -> tuple[list[tuple[list[str | int], s.ProposalCreate]], int]:
    """The proposals of a CSV grid (its rows with a proposed value) and the number of data rows;
    422 listing every bad row (numbered as a spreadsheet shows them, the header being row 1)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _csv_error(["body"], "The CSV is not valid UTF-8.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        missing = [c for c in IMPORT_REQUIRED if c not in header]
        if missing:
            raise _csv_error(["body", "header"], f"missing column(s): {', '.join(missing)}")
        items: list[tuple[list[str | int], s.ProposalCreate]] = []
        errors: list[FieldError] = []
        rows = 0
        for line, record_ in enumerate(reader, start=2):
            rows += 1
            if rows > MAX_IMPORT_ROWS:
                raise _csv_error(["body"], f"At most {MAX_IMPORT_ROWS} rows per file.")
            if None in record_:
                errors.append(
                    FieldError(loc=["body", "row", line], msg="more cells than columns", type="csv")
                )
                continue
            value = (record_.get("proposed_value") or "").strip()
            if not value:
                continue
            loc: list[str | int] = ["body", "row", line]
            number = _whole(value)
            if isinstance(number, str):
                msg = f"{value!r} is not a whole number on the scale"
                errors.append(FieldError(loc=[*loc, "proposed_value"], msg=msg, type="not_whole"))
                continue
            data: dict[str, Any] = {
                "subject_ref": (record_.get("subject_ref") or "").strip(),
                "competency": (record_.get("competency") or "").strip(),
                "value": number,
                "reason": _undefused(record_.get("reason") or ""),
            }
            proposer = _undefused((record_.get("proposer") or "").strip())
            if proposer:
                data["proposer"] = proposer
            try:
                items.append((loc, s.ProposalCreate.model_validate(data, strict=False)))
            except ValidationError as exc:
                errors += [
                    FieldError(
                        loc=[*loc, _column(str(e["loc"][0]) if e["loc"] else "")],
                        msg=str(e["msg"])[:2000],
                        type=str(e["type"])[:100],
                    )
                    for e in exc.errors()
                ]
    except csv.Error as exc:
        raise _csv_error(["body", "row", reader.line_num], f"not CSV: {exc}") from None
    if errors:
        raise InvalidInput(
            f"{len({tuple(e.loc[:3]) for e in errors})} bad row(s) in the CSV; nothing was stored.",
            errors=errors[:1000],
        )
    seen: dict[tuple[str, str], int | str] = {}
    for loc, item in items:
        key = (item.subject_ref, item.competency)
        if key in seen:
            errors.append(
                FieldError(
                    loc=[*loc, "competency"],
                    msg=f"{item.subject_ref!r} {item.competency!r} is proposed again (row {seen[key]})",
                    type="duplicate",
                )
            )
        seen[key] = loc[2]
    if errors:
        raise InvalidInput(
            f"{len(errors)} duplicate row(s) in the CSV; nothing was stored.", errors=errors[:1000]
        )
    return items, rows


def _column(field: str) -> str:
    """The CSV column of a ProposalCreate field."""
    return "proposed_value" if field == "value" else field


def _undefused(cell: str) -> str:
    """A cell as it was before the grid export defused it (its leading quote taken off)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def _whole(value: str) -> int | str:
    """A spreadsheet's number as an int ("3" or "3.0"); anything else as it is, to be refused."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else value


def _csv_error(loc: list[str | int], msg: str) -> InvalidInput:
    return InvalidInput(msg, errors=[FieldError(loc=loc, msg=msg, type="csv")])


async def proposals(
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[str, str] | None,
) -> list[s.ProposalRead]:
    """The session's proposals (withdrawn ones too), by person then competency."""
    row = await _session(session, principal, session_id)
    _, fw = await _framework(session, principal, row)
    found = await repo.proposals(session, principal.tenant_id, row.id, limit=limit, after=after)
    return [_proposal_read(p, m, fw) for p, m in found]


async def withdraw(
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    subject_ref: str,
    competency: str,
) -> None:
    """Withdraw a standing proposal (it stays on the record as withdrawn)."""
    row = await _session(session, principal, session_id, lock=True)
    _open(row)
    member = (await repo.member_by_ref(session, principal.tenant_id, row.id, [subject_ref])).get(
        subject_ref
    )
    found = None
    if member is not None:
        found = await repo.proposal(
            session, principal.tenant_id, row.id, member.subject_id, competency
        )
    if member is None or found is None or found.withdrawn_at is not None:
        raise NotFound(f"No standing proposal for {subject_ref!r} {competency!r} in this session.")
    found.withdrawn_at = found.updated_at = utcnow()
    session.add(found)
    record(
        session,
        principal,
        "calibration_proposal.withdrawn",
        "calibration_session",
        str(row.id),
        {"subject_id": str(member.subject_id), "competency": competency},
    )
    await session.flush()


async def close(
    session: AsyncSession, principal: Principal, session_id: uuid.UUID
) -> s.SessionSummary:
    """Write every standing proposal as a ``calibrated`` rating, one assessment per person,
    in this one transaction; the session is closed for good. A second close gets 409: the row
    lock makes a concurrent one wait and then see the session closed."""
    row = await _session(session, principal, session_id, lock=True)
    _open(row)
    resolved, _ = await _framework(session, principal, row)
    standing = await repo.proposals(session, principal.tenant_id, row.id, standing_only=True)
    by_person: dict[uuid.UUID, list[CalibrationProposal]] = {}
    refs: dict[uuid.UUID, str] = {}
    for p, m in standing:
        by_person.setdefault(p.subject_id, []).append(p)
        refs[p.subject_id] = m.subject_ref
    watchers = await events.readiness_watchers(session, principal.tenant_id)
    before = (
        await events.snapshot(session, principal.tenant_id, resolved, list(by_person))
        if watchers and by_person
        else None
    )
    now = utcnow()
    created = []
    for subject_id, items in by_person.items():
        assessment = Assessment(
            tenant_id=principal.tenant_id,
            subject_id=subject_id,
            framework_tenant_id=resolved.version.tenant_id,
            framework_version_id=resolved.version.id,
            rater_ref=rater_ref(row.id),
            rater_role=CALIBRATED_ROLE,
            assessed_at=now,
            sequence=time.time_ns(),
        )
        session.add(assessment)
        session.add_all(
            Rating(
                tenant_id=principal.tenant_id,
                assessment_id=assessment.id,
                competency_key=p.competency_key,
                proficiency=p.value,
                evidence=p.reason,
            )
            for p in items
        )
        record(
            session,
            principal,
            "assessment.created",
            "assessment",
            str(assessment.id),
            {
                "subject_id": str(subject_id),
                "ratings": len(items),
                "rater_role": CALIBRATED_ROLE,
                "calibration_session": str(row.id),
            },
        )
        created.append((assessment, len(items)))
    row.status, row.closed_at, row.closed_by = "closed", now, _actor(principal)
    row.calibrated_ratings = len(standing)
    session.add(row)
    record(
        session,
        principal,
        "calibration_session.closed",
        "calibration_session",
        str(row.id),
        {"assessments": len(created), "ratings": len(standing)},
    )
    await session.flush()
    await webhooks.enqueue(
        session,
        principal.tenant_id,
        "assessment.created",
        [
            events.assessment_created(
                a.id, refs[a.subject_id], resolved, CALIBRATED_ROLE, a.assessed_at, n
            )
            for a, n in created
        ],
        subject_ids=[a.subject_id for a, _ in created],
    )
    await webhooks.enqueue(
        session,
        principal.tenant_id,
        "calibration.closed",
        [events.calibration_closed(row.id, resolved, now, len(created), len(standing))],
        subject_ids=[None],
    )
    if before is not None:
        await events.readiness_changed(session, principal.tenant_id, before, watchers)
    await session.flush()
    people, proposals_ = (await repo.counts(session, principal.tenant_id, [row.id]))[row.id]
    return _summary(row, people, proposals_)


async def grid(session: AsyncSession, principal: Principal, session_id: uuid.UUID) -> s.Grid:
    """People × competencies: the snapshot's value, the fair value, and any standing proposal."""
    row = await _session(session, principal, session_id)
    _, fw = await _framework(session, principal, row)
    members = await repo.members(session, principal.tenant_id, row.id)
    standing = {
        (p.subject_id, p.competency_key): p
        for p, _ in await repo.proposals(session, principal.tenant_id, row.id, standing_only=True)
    }
    rows = []
    for m in members:
        for j, c in enumerate(fw.competencies):
            p = standing.get((m.subject_id, c.key))
            rows.append(
                s.GridRow(
                    subject_ref=m.subject_ref,
                    competency=c.key,
                    current_value=m.values[j] if j < len(m.values) else None,
                    fair_value=m.fair_values[j] if j < len(m.fair_values) else None,
                    proposed_value=p.value if p else None,
                    reason=p.reason if p else None,
                    proposer=p.proposer if p else None,
                )
            )
    return s.Grid(session_id=row.id, status=row.status, rows=rows)  # type: ignore[arg-type]


def grid_csv(answer: s.Grid) -> str:
    """The grid as CSV (cells a spreadsheet would run as formulas defused)."""
    out = io.StringIO()
    writer = csv_output.Writer(out)
    writer.writerow(GRID_COLUMNS)
    for r in answer.rows:
        writer.writerow(["" if (v := getattr(r, c)) is None else v for c in GRID_COLUMNS])
    return out.getvalue()
