"""`ladder calibration ...`: a session's grid and rater effects as CSV, proposals from CSV.

Like the other commands that read a tenant's data, these open the database directly (no
server needed) as the tenant named by ``--tenant``; the service code and the CSV are the API's.
"""

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from app.auth.principal import Principal

T = TypeVar("T")
Use = Callable[["AsyncSession", "Principal"], Awaitable[T]]


async def _as_tenant(tenant_slug: str, use: Use[T], *, write: bool = False) -> T:
    """Run ``use`` in one transaction of the tenant (committed only when ``write``)."""
    from app.config import get_settings
    from app.tenant_session import tenant_admin

    async with tenant_admin(get_settings(), tenant_slug, "calibration", write=write) as (db, who):
        return await use(db, who)


def _run(tenant_slug: str, use: Use[T], *, write: bool = False) -> T:
    """Run a use case; refused input is a message and exit status 1, not a traceback."""
    from pydantic import ValidationError

    from app.errors import AppError

    try:
        return asyncio.run(_as_tenant(tenant_slug, use, write=write))
    except AppError as exc:
        lines = [f"ladder calibration: {exc.detail}"]
        lines += [f"  {'.'.join(map(str, e.loc))}: {e.msg}" for e in exc.errors or []]
        sys.exit("\n".join(lines))
    except ValidationError as exc:
        sys.exit(f"ladder calibration: {exc}")


def _session_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        sys.exit(f"ladder calibration: {text!r} is not a session id")


def _export_grid(args: argparse.Namespace) -> None:
    from app.calibration import sessions_service

    session_id = _session_id(args.session)
    grid = _run(args.tenant, lambda db, who: sessions_service.grid(db, who, session_id))
    sys.stdout.write(sessions_service.grid_csv(grid))


def _rater_effects(args: argparse.Namespace) -> None:
    from app.calibration import service, sessions_service
    from app.calibration.router import _csv
    from app.calibration.schemas import RaterEffectsRequest, RaterEffectsResponse

    answer: RaterEffectsResponse
    if args.session is not None:
        if args.key is not None:
            sys.exit("ladder calibration rater-effects: give a framework key or --session")
        session_id = _session_id(args.session)
        answer = _run(
            args.tenant, lambda db, who: sessions_service.rater_effects(db, who, session_id)
        )
        sys.stdout.write(_csv(answer, "raters"))
        return
    if args.key is None:
        sys.exit("ladder calibration rater-effects: give a framework key or --session")
    request: dict[str, Any] = {"framework": {"key": args.key, "version": args.version}}
    if args.as_of:
        request["as_of"] = args.as_of
    if args.window_days:
        request["window_days"] = args.window_days
    if args.subject:
        request["subject_refs"] = args.subject
    for pair in args.attribute or ():
        if "=" not in pair:
            sys.exit(f"ladder calibration: --attribute wants NAME=VALUE, not {pair!r}")
    if args.track or args.level or args.attribute:
        request["filter"] = {
            "track": args.track,
            "current_level": args.level,
            "attributes": dict(a.partition("=")[::2] for a in args.attribute or ()),
        }
    request["include_fair_averages"] = args.table == "fair_averages"

    async def fit(db: "AsyncSession", who: "Principal") -> RaterEffectsResponse:
        return await service.rater_effects(db, who, RaterEffectsRequest.model_validate(request))

    sys.stdout.write(_csv(_run(args.tenant, fit), args.table))


def _import_proposals(args: argparse.Namespace) -> None:
    from app.calibration import sessions_service

    session_id = _session_id(args.session)
    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        sys.exit(f"ladder calibration: {exc}")
    result = _run(
        args.tenant,
        lambda db, who: sessions_service.import_proposals(db, who, session_id, raw, args.proposer),
        write=True,
    )
    print(
        f"{result.proposed} proposal(s) recorded from {result.rows} row(s);"
        f" {result.unchanged} row(s) without a proposed value"
    )


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `ladder calibration` and its subcommands."""
    group = sub.add_parser("calibration", help="calibration sessions and rater effects as CSV")
    commands = group.add_subparsers(dest="calibration_command", required=True)

    p = commands.add_parser("export-grid", help="a session's grid as CSV (people × competencies)")
    p.add_argument("session", help="the session's id")
    p.add_argument("--tenant", default="dev")
    p.set_defaults(func=_export_grid)

    p = commands.add_parser(
        "rater-effects", help="the rater-effects table as CSV, of a cohort or of a session"
    )
    p.add_argument("key", nargs="?", help="the framework key (or --session)")
    p.add_argument("--session", help="the table of this session's snapshot")
    p.add_argument("--version", type=int, help="default: the published version")
    p.add_argument("--tenant", default="dev")
    p.add_argument("--as-of", help="ISO 8601 moment with offset, end of the window (now)")
    p.add_argument("--window-days", type=int, help="default: the framework's window")
    p.add_argument("--track", help="only people on this track")
    p.add_argument("--level", help="only people at this current level")
    p.add_argument(
        "--attribute", action="append", help="NAME=VALUE: only people with it; repeatable"
    )
    p.add_argument("--subject", action="append", help="only this person (a ref); repeatable")
    p.add_argument("--table", choices=("raters", "fair_averages"), default="raters")
    p.set_defaults(func=_rater_effects)

    p = commands.add_parser(
        "import-proposals", help="record a CSV grid's proposed values in an open session"
    )
    p.add_argument("session", help="the session's id")
    p.add_argument("file", help="the grid's CSV, edited (rows with a proposed_value count)")
    p.add_argument("--tenant", default="dev")
    p.add_argument("--proposer", help="who proposes rows that name no proposer (default: system)")
    p.set_defaults(func=_import_proposals)
