"""The `ladder` command: serve, migrate, bootstrap tenants and keys, print the OpenAPI document."""

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config

from app.config import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:
    from app.frameworks.impact import Impact
    from app.frameworks.schemas import ImpactMover, ImpactResponse


def migrate(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to a revision with Alembic (the only way the schema is made)."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", settings.migration_database_url or settings.database_url)
    cfg.attributes["configure_logging"] = False
    command.upgrade(cfg, revision)


async def _bootstrap(
    settings: Settings,
    slug: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    key_name: str,
) -> str:
    from app.auth.service import bootstrap_tenant
    from app.db import create_engine, make_sessionmaker, unit_of_work

    engine = create_engine(settings)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            _, token = await bootstrap_tenant(
                session,
                slug,
                name=name,
                prefix=settings.api_key_prefix,
                scopes=scopes,
                key_name=key_name,
                expires_at=expires_at,
                reuse_existing=True,
            )
            return token
    finally:
        await engine.dispose()


async def _key_still_valid(settings: Settings, token: str) -> bool:
    from app.auth.service import authenticate
    from app.db import create_engine, make_sessionmaker
    from app.errors import Unauthenticated

    engine = create_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            try:
                await authenticate(session, token, prefix=settings.api_key_prefix)
            except Unauthenticated:
                return False
            return True
    finally:
        await engine.dispose()


def ensure_dev_key(settings: Settings) -> str:
    """Reuse the development key in ``var/dev-api-key`` or make one (and its tenant)."""
    path = settings.dev_api_key_file
    if path.exists():
        token = path.read_text().strip()
        if token and asyncio.run(_key_still_valid(settings, token)):
            return token
    token = asyncio.run(
        _bootstrap(settings, "dev", "Local development", ["admin"], None, "dev admin key")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


async def _load_builtin(settings: Settings) -> list[str]:
    from app.db import create_engine, make_sessionmaker, unit_of_work
    from app.frameworks.service import ensure_builtin

    engine = create_engine(settings)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            return await ensure_builtin(session)
    finally:
        await engine.dispose()


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run the HTTP server (uvicorn) with graceful shutdown on SIGTERM."""
    from app import server

    server.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        proxy_headers=True,
        server_header=False,  # no "Server: uvicorn" banner telling what to attack
        timeout_graceful_shutdown=20,
        # Header size, count and time limits, keep-alive and connection bounds (see app/server.py).
        **server.http_options(settings),
    )


def _cmd_dev(args: argparse.Namespace) -> None:
    os.environ.setdefault("LOG_FORMAT", "text")  # a person reads these logs, not a collector
    settings = get_settings()
    migrate(settings)
    asyncio.run(_load_builtin(settings))
    token = ensure_dev_key(settings)
    url = f"http://{args.host}:{args.port}"
    print(
        f"\n  Competency Ladder on {url}\n  API docs: {url}/docs\n"
        f"  Development API key (also in {settings.dev_api_key_file}):\n    {token}\n"
        f"  Try: curl -H 'Authorization: Bearer {token}' {url}/v1/frameworks\n",
        flush=True,
    )
    serve(settings, args.host, args.port, 1)


def _cmd_serve(args: argparse.Namespace) -> None:
    serve(get_settings(), args.host, args.port, args.workers)


def _cmd_migrate(args: argparse.Namespace) -> None:
    settings = get_settings()
    migrate(settings, args.revision)
    print(f"schema at {args.revision}")
    if settings.load_builtin_frameworks and args.revision == "head":
        # Loaded as the role that migrated: the service's own role may not be granted rights yet.
        owner = settings.model_copy(
            update={"database_url": settings.migration_database_url or settings.database_url}
        )
        loaded = asyncio.run(_load_builtin(owner))
        print(f"built-in frameworks: {', '.join(loaded) if loaded else 'up to date'}")


def _cmd_create_tenant(args: argparse.Namespace) -> None:
    settings = get_settings()
    token = asyncio.run(
        _bootstrap(settings, args.slug, args.name or args.slug, ["admin"], None, "first admin key")
    )
    print(token)


def _cmd_create_key(args: argparse.Namespace) -> None:
    settings = get_settings()
    expires = datetime.fromisoformat(args.expires_at) if args.expires_at else None
    token = asyncio.run(
        _bootstrap(settings, args.tenant, args.tenant, args.scope, expires, args.name)
    )
    print(token)


def _cmd_openapi(args: argparse.Namespace) -> None:
    from app.main import create_app

    text = (
        json.dumps(create_app(Settings(load_builtin_frameworks=False)).openapi(), indent=2) + "\n"
    )
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)


def _cmd_score(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from app import offline
    from app.models import utcnow

    try:
        fw = offline.load_framework(args.framework)
        ratings = offline.read_ratings(Path(args.ratings))
    except (offline.RatingsFileError, OSError) as exc:
        sys.exit(f"ladder score: {exc}")
    as_of = datetime.fromisoformat(args.as_of) if args.as_of else utcnow()
    refs = tqdm(
        sorted(ratings), desc="scoring", unit="subject", file=sys.stderr, disable=args.quiet
    )
    try:
        rows = offline.score_all(fw, ratings, as_of=as_of, track=args.track, progress=iter(refs))
    except ValueError as exc:
        sys.exit(f"ladder score: {exc}")
    print(offline.render(rows, args.format))


async def _export(
    settings: Settings,
    tenant_slug: str,
    key: str,
    version: int | None,
    case_base_uri: str | None = None,
) -> dict[str, Any]:
    from app.frameworks.document import FrameworkDocument, dump_document
    from app.frameworks.service import resolve
    from app.tenant_session import tenant_admin

    async with tenant_admin(settings, tenant_slug, "export") as (session, principal):
        resolved = await resolve(session, principal, key, version)
    doc = FrameworkDocument.model_validate(resolved.version.content)
    if case_base_uri is None:
        return dump_document(doc)
    from app.interop import case

    fw, v = resolved.framework, resolved.version
    ctx = case.ExportContext(
        ids=case.CaseIds(owner=fw.tenant_id, key=fw.key, version=v.version),
        status=v.status,
        changed_at=v.updated_at,
        base_uri=case_base_uri.rstrip("/"),
    )
    return case.document_to_package(doc, ctx)


async def _import(settings: Settings, tenant_slug: str, data: object, publish: bool) -> str:
    from app.frameworks.document import parse_document
    from app.frameworks.service import import_document
    from app.tenant_session import tenant_admin

    async with tenant_admin(settings, tenant_slug, "import", write=True) as (session, principal):
        resolved = await import_document(session, principal, parse_document(data), publish=publish)
    return (
        f"{resolved.framework.key} version {resolved.version.version} ({resolved.version.status})"
    )


async def _diff_stored(
    settings: Settings, tenant_slug: str, key: str, old: int | None, new: int | None
) -> dict[str, Any]:
    from app.frameworks.impact import diff_versions
    from app.tenant_session import tenant_admin

    async with tenant_admin(settings, tenant_slug, "diff") as (session, principal):
        diff = await diff_versions(session, principal, key, old, new)
    return diff.model_dump(mode="json", by_alias=True)


def _cmd_diff(args: argparse.Namespace) -> None:
    from app.errors import InvalidInput, NotFound
    from app.frameworks.diff import change_as_dict, diff_documents, summary_markdown
    from app.frameworks.document import parse_document
    from app.frameworks.evolution import renames_of
    from app.frameworks.files import load_file

    try:
        if args.new is None:
            data = asyncio.run(
                _diff_stored(get_settings(), args.tenant, args.old, args.from_, args.to)
            )
        else:
            old, new = (
                parse_document(load_file(Path(p).read_bytes(), Path(p).name))
                for p in (args.old, args.new)
            )
            changes = diff_documents(old, new, renames_of(new.competency_map))
            summary = summary_markdown(old, new, changes, old_label=args.old, new_label=args.new)
            data = {"changes": [change_as_dict(c) for c in changes], "summary": summary}
    except (InvalidInput, NotFound) as exc:
        sys.exit(f"ladder diff: {exc.detail}")
    except OSError as exc:
        sys.exit(f"ladder diff: {exc}")
    if args.format == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(data["summary"])


async def _impact_stored(
    settings: Settings, tenant_slug: str, key: str, version: int, request: dict[str, Any]
) -> "Impact":
    from app.frameworks.impact import impact
    from app.frameworks.schemas import ImpactRequest
    from app.tenant_session import tenant_admin

    body = ImpactRequest.model_validate(request)
    async with tenant_admin(settings, tenant_slug, "impact") as (session, principal):
        return await impact(session, principal, key, version, body)


def _impact_markdown(response: "ImpactResponse", movers: "list[ImpactMover]") -> str:
    """The impact as Markdown: the summary, level counts, readiness changes, causes, movers."""
    s = response.summary
    lines = [
        f"# Impact of publishing {response.key} version {response.after_version}"
        f" (published: version {response.before_version})",
        "",
        f"As of {response.as_of.isoformat()}: {s.subjects} people, {s.moved_up} move up,"
        f" {s.moved_down} move down, {s.unchanged} unchanged;"
        f" {s.ratings_no_longer_count} have ratings that no longer count.",
        "",
        "| Level | Before | After |",
        "|---|---:|---:|",
    ]
    levels = list(dict.fromkeys([*s.level_counts_before, *s.level_counts_after]))
    for level in levels:
        before, after = s.level_counts_before.get(level, 0), s.level_counts_after.get(level, 0)
        lines.append(f"| {level} | {before} | {after} |")
    if s.readiness_changes:
        lines += [
            "",
            "| Level | Mean readiness change | Raised | Lowered |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {c.level} | {c.mean_change:+.3f} | {c.raised} | {c.lowered} |"
            for c in s.readiness_changes
        ]
    if s.top_competencies:
        lines += ["", "| Competency | Mean readiness change | People |", "|---|---:|---:|"]
        lines += [
            f"| {c.competency} | {c.mean_abs_readiness_change:.3f} | {c.people_affected} |"
            for c in s.top_competencies
        ]
    if movers:
        lines += ["", "| Person | Direction | Before | After |", "|---|---|---|---|"]
        for m in movers:
            was = m.level_before.key if m.level_before else "-"
            now = m.level_after.key if m.level_after else "-"
            lines.append(f"| {m.subject_ref} | {m.direction} | {was} | {now} |")
    return "\n".join(lines)


def _cmd_impact(args: argparse.Namespace) -> None:
    import io

    from pydantic import ValidationError

    from app import csv_output
    from app.errors import InvalidInput, NotFound
    from app.frameworks.router import IMPACT_COLUMNS

    request: dict[str, Any] = {"top_competencies": args.top}
    if args.as_of:
        request["as_of"] = args.as_of
    if args.subject:
        request["subject_refs"] = args.subject
    if args.track or args.level or args.attribute:
        for pair in args.attribute or ():
            if "=" not in pair:
                sys.exit(f"ladder impact: --attribute wants NAME=VALUE, not {pair!r}")
        attributes = dict(a.partition("=")[::2] for a in args.attribute or ())
        request["filter"] = {
            "track": args.track,
            "current_level": args.level,
            "attributes": attributes,
        }
    try:
        result = asyncio.run(
            _impact_stored(get_settings(), args.tenant, args.key, args.version, request)
        )
    except (InvalidInput, NotFound) as exc:
        sys.exit(f"ladder impact: {exc.detail}")
    except ValidationError as exc:
        sys.exit(f"ladder impact: {exc}")
    if args.format == "json":
        # As the API answers, with every mover on the one page.
        data = result.response.model_copy(update={"movers": result.movers})
        print(data.model_dump_json(indent=2))
    elif args.format == "csv":
        # The API's CSV: every person who moves, one row each.
        out = io.StringIO()
        writer = csv_output.Writer(out)
        writer.writerow(IMPACT_COLUMNS)
        for mover in result.movers:
            row = mover.model_dump()
            for side in ("level_before", "level_after"):
                row[side] = row[side]["key"] if row[side] else ""
            writer.writerow(["" if row[c] is None else row[c] for c in IMPACT_COLUMNS])
        sys.stdout.write(out.getvalue())
    else:
        print(_impact_markdown(result.response, result.movers))


def _cmd_export(args: argparse.Namespace) -> None:
    from app.frameworks.files import dump_yaml

    settings = get_settings()
    base_uri = None
    if args.format == "case":
        base_uri = args.base_uri or f"{settings.public_base_url}/ims/case/v1p1"
    data = asyncio.run(_export(settings, args.tenant, args.key, args.version, base_uri))
    text = dump_yaml(data) if args.format == "yaml" else json.dumps(data, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)


def _cmd_import(args: argparse.Namespace) -> None:
    from app.errors import InvalidInput
    from app.frameworks.files import load_file
    from app.unicode import refuse_lone_surrogates

    path = Path(args.file)
    try:
        data = load_file(path.read_bytes(), path.name)
        # As the API does: such text would fail later, after parts of the import were made.
        refuse_lone_surrogates(data, [])
        if args.case:
            from pydantic import ValidationError

            from app.frameworks.document import dump_document
            from app.interop import case

            try:
                package = case.CFPackage.model_validate(data)
            except ValidationError as exc:
                sys.exit(f"ladder import: not a CASE CFPackage: {exc}")
            result = case.package_to_document(package, strict=args.strict, key=args.key)
            for entry in result.report:
                print(f"  report: {entry.model_dump_json()}", file=sys.stderr)
            data = dump_document(result.document)
        print(asyncio.run(_import(get_settings(), args.tenant, data, args.publish)))
    except InvalidInput as exc:
        details = "\n".join(f"  {'.'.join(map(str, e.loc))}: {e.msg}" for e in exc.errors or [])
        sys.exit(f"ladder import: {exc.detail}\n{details}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `ladder` command."""
    parser = argparse.ArgumentParser(prog="ladder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    default_port = int(os.environ.get("PORT", "8000"))

    p = sub.add_parser("dev", help="migrate, load the built-in ladder, print a dev key, serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=default_port)
    p.set_defaults(func=_cmd_dev)

    p = sub.add_parser("serve", help="run the HTTP server")
    p.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server is meant to listen
    p.add_argument("--port", type=int, default=default_port)
    p.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("migrate", help="apply database migrations and load the built-in ladder")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("create-tenant", help="create a tenant and print its first admin key")
    p.add_argument("slug")
    p.add_argument("--name")
    p.set_defaults(func=_cmd_create_tenant)

    p = sub.add_parser("create-key", help="issue an API key for an existing tenant (by slug)")
    p.add_argument("tenant")
    p.add_argument("--name", default="cli key")
    p.add_argument("--scope", action="append", required=True, help="repeat for several scopes")
    p.add_argument("--expires-at", help="ISO 8601 with offset, e.g. 2027-01-01T00:00:00+00:00")
    p.set_defaults(func=_cmd_create_key)

    p = sub.add_parser("openapi", help="print (or write) the OpenAPI document")
    p.add_argument("--output")
    p.set_defaults(func=_cmd_openapi)

    p = sub.add_parser("score", help="score a ratings file offline (CSV or JSON), no server needed")
    p.add_argument(
        "ratings",
        help="CSV with columns "
        + ", ".join(
            ("subject_ref", "competency", "proficiency", "rater_ref", "rater_role", "assessed_at")
        )
        + ", or JSON list",
    )
    p.add_argument(
        "--framework", help="framework file or built-in key (default: product-management)"
    )
    p.add_argument("--as-of", help="ISO 8601 moment to score at (default: now)")
    p.add_argument("--track", help="track of every subject, e.g. ic or management")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser(
        "import", help="import a framework file (JSON/YAML, or a CASE package) into a tenant"
    )
    p.add_argument("file")
    p.add_argument("--tenant", default="dev")
    p.add_argument("--publish", action="store_true")
    p.add_argument("--case", action="store_true", help="the file is a CASE 1.1 CFPackage (JSON)")
    p.add_argument(
        "--strict", action="store_true", help="with --case: refuse identifiers that are not UUIDs"
    )
    p.add_argument("--key", help="with --case: the framework key to import under")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("export", help="export a framework version as a file")
    p.add_argument("key")
    p.add_argument("--version", type=int)
    p.add_argument("--tenant", default="dev")
    p.add_argument("--format", choices=("yaml", "json", "case"), default="yaml")
    p.add_argument(
        "--base-uri",
        help="with --format case: the CASE base URI (default: PUBLIC_BASE_URL/ims/case/v1p1)",
    )
    p.add_argument("--output")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "diff", help="what changed between two framework files, or two stored versions of one"
    )
    p.add_argument("old", help="a framework file, or a framework key (then --from/--to)")
    p.add_argument("new", nargs="?", help="the newer framework file")
    p.add_argument("--from", dest="from_", type=int, help="default: the published version")
    p.add_argument("--to", type=int, help="default: the newest version (a draft included)")
    p.add_argument("--tenant", default="dev")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser(
        "impact", help="whose level changes if a stored framework version is published"
    )
    p.add_argument("key", help="the framework key")
    p.add_argument("version", type=int, help="the version to compare with the published one")
    p.add_argument("--tenant", default="dev")
    p.add_argument("--as-of", help="ISO 8601 moment with offset to score at (default: now)")
    p.add_argument("--track", help="only people on this track")
    p.add_argument("--level", help="only people at this current level")
    p.add_argument(
        "--attribute", action="append", help="NAME=VALUE: only people with it; repeatable"
    )
    p.add_argument("--subject", action="append", help="only this person (a ref); repeatable")
    p.add_argument("--top", type=int, default=10, help="how many competencies to list as causes")
    p.add_argument("--format", choices=("markdown", "json", "csv"), default="markdown")
    p.set_defaults(func=_cmd_impact)

    # ladder calibration export-grid | rater-effects | import-proposals
    from app.calibration.commands import add_parser as add_calibration_commands

    add_calibration_commands(sub)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
