"""Framework use cases: drafts, publishing, cloning, import/export, built-in templates."""

import hashlib
import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.repository import record
from app.auth.principal import Principal
from app.db import bind_tenant
from app.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from app.etags import check_if_match, guarded_update, make_etag
from app.frameworks import evolution
from app.frameworks import repository as repo
from app.frameworks.compile import compile_framework
from app.frameworks.document import FrameworkDocument, dump_document, ensure_valid, parse_document
from app.frameworks.files import load_file
from app.interop import repository as case_index
from app.models import SYSTEM_TENANT_ID, Framework, FrameworkVersion, utcnow
from app.scoring.model import Framework as ScoringFramework

BUILTIN_DIR = Path(__file__).parent / "builtin"


@dataclass(frozen=True, slots=True)
class ResolvedVersion:
    """A framework version and the framework it belongs to."""

    framework: Framework
    version: FrameworkVersion

    @property
    def builtin(self) -> bool:
        return self.framework.tenant_id == SYSTEM_TENANT_ID

    @property
    def etag(self) -> str:
        return make_etag(self.version.id, self.version.revision)


_COMPILED: "OrderedDict[tuple[str, int], ScoringFramework]" = OrderedDict()
_COMPILED_MAX = 256


def _remembered(version_id: uuid.UUID, revision: int) -> ScoringFramework | None:
    cache_key = (version_id.hex, revision)
    hit = _COMPILED.get(cache_key)
    if hit is not None:
        _COMPILED.move_to_end(cache_key)
    return hit


def _compile_and_remember(
    version_id: uuid.UUID, revision: int, number: int, content: dict[str, Any]
) -> ScoringFramework:
    fw = compile_framework(FrameworkDocument.model_validate(content), number)
    _COMPILED[(version_id.hex, revision)] = fw
    if len(_COMPILED) > _COMPILED_MAX:
        _COMPILED.popitem(last=False)
    return fw


def remembered(version_id: uuid.UUID, revision: int) -> ScoringFramework | None:
    """The compiled version if this worker holds it (no read), else None."""
    return _remembered(version_id, revision)


def compiled(version: FrameworkVersion) -> ScoringFramework:
    """The scoring view of a version, cached per (id, revision): a revision never changes."""
    hit = _remembered(version.id, version.revision)
    if hit is None:
        hit = _compile_and_remember(version.id, version.revision, version.version, version.content)
    return hit


async def compiled_version(
    session: AsyncSession, owner: uuid.UUID, version_id: uuid.UUID, revision: int, number: int
) -> ScoringFramework:
    """The compiled version by its identity; the stored document is read only on a cache miss."""
    hit = _remembered(version_id, revision)
    if hit is None:
        content = await repo.version_content(session, owner, version_id)
        hit = _compile_and_remember(version_id, revision, number, content)
    return hit


def _not_found(key: str) -> NotFound:
    return NotFound(f"No framework {key!r} is visible to this tenant.")


async def _own_writable(session: AsyncSession, principal: Principal, key: str) -> Framework:
    fw = await repo.find_framework(session, principal.tenant_id, key)
    if fw is None:
        raise _not_found(key)
    if fw.tenant_id == SYSTEM_TENANT_ID:
        raise Conflict(f"{key!r} is a built-in template and read-only; clone it to adapt it.")
    return fw


async def list_frameworks(
    session: AsyncSession, principal: Principal, *, limit: int, after_key: str | None
) -> list[dict[str, Any]]:
    """Summaries of the tenant's frameworks and the built-in templates, by key, at most
    ``limit`` of them after ``after_key``."""
    out: list[dict[str, Any]] = []
    visible = await repo.list_visible(session, principal.tenant_id, after_key=after_key, keys=limit)
    for fw in visible:
        versions = await repo.versions_of(session, fw)
        published = [v.version for v in versions if v.status == "published"]
        drafts = [v.version for v in versions if v.status == "draft"]
        out.append(
            {
                "key": fw.key,
                "name": fw.name,
                "description": fw.description,
                "builtin": fw.tenant_id == SYSTEM_TENANT_ID,
                "latest_published_version": max(published) if published else None,
                "draft_version": max(drafts) if drafts else None,
                "versions": len(versions),
                "cloned_from": fw.cloned_from,
            }
        )
    return out


async def resolve(
    session: AsyncSession, principal: Principal, key: str, version: int | None = None
) -> ResolvedVersion:
    """A given version, or the latest published one, of a framework visible to the tenant."""
    fw = await repo.find_framework(session, principal.tenant_id, key)
    if fw is None:
        raise _not_found(key)
    if version is None:
        row = await repo.latest_published(session, fw)
        if row is None:
            raise NotFound(f"Framework {key!r} has no published version yet; see its versions.")
    else:
        row = await repo.get_version(session, fw, version)
        if row is None:
            raise NotFound(f"Framework {key!r} has no version {version}.")
    return ResolvedVersion(fw, row)


async def list_versions(
    session: AsyncSession, principal: Principal, key: str
) -> list[FrameworkVersion]:
    fw = await repo.find_framework(session, principal.tenant_id, key)
    if fw is None:
        raise _not_found(key)
    return list(await repo.versions_of(session, fw))


async def _add_version(
    session: AsyncSession, fw: Framework, doc: FrameworkDocument, version: int, publish: bool
) -> FrameworkVersion:
    now = utcnow()
    row = FrameworkVersion(
        created_at=now,
        updated_at=now,
        tenant_id=fw.tenant_id,
        framework_id=fw.id,
        version=version,
        status="published" if publish else "draft",
        content=dump_document(doc),
        published_at=now if publish else None,
    )
    session.add(row)
    case_index.index_version(session, fw, row)
    if publish:
        await _archive_older(session, fw, version)
    return row


async def _archive_older(session: AsyncSession, fw: Framework, version: int) -> None:
    for older in await repo.versions_of(session, fw):
        if older.status == "published" and older.version < version:
            older.status = "archived"
            older.updated_at = utcnow()
            session.add(older)


async def _assert_key_free(session: AsyncSession, principal: Principal, key: str) -> None:
    existing = await repo.find_framework(session, principal.tenant_id, key)
    if existing is not None:
        kind = "a built-in template" if existing.tenant_id == SYSTEM_TENANT_ID else "your framework"
        raise Conflict(f"The key {key!r} is already used by {kind}.")


async def create(
    session: AsyncSession, principal: Principal, doc: FrameworkDocument, *, publish: bool = False
) -> ResolvedVersion:
    """A new framework with version 1 (a draft unless published at once)."""
    ensure_valid(doc)
    if doc.competency_map is not None:
        evolution.check_map(doc.competency_map, None, doc)
    await _assert_key_free(session, principal, doc.key)
    fw = Framework(
        tenant_id=principal.tenant_id, key=doc.key, name=doc.name, description=doc.description
    )
    session.add(fw)
    await session.flush()
    row = await _add_version(session, fw, doc, 1, publish)
    record(
        session,
        principal,
        "framework.created",
        "framework",
        doc.key,
        {"version": 1, "published": publish},
    )
    await _flush_unique(session, doc.key)
    return ResolvedVersion(fw, row)


async def _flush_unique(session: AsyncSession, key: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent request took the key or version first.
        raise Conflict(f"Framework {key!r} was changed concurrently; retry.") from None


async def import_document(
    session: AsyncSession, principal: Principal, doc: FrameworkDocument, *, publish: bool
) -> ResolvedVersion:
    """Create the framework, or add a new version to the tenant's framework with that key."""
    ensure_valid(doc)
    fw = await repo.find_framework(session, principal.tenant_id, doc.key)
    if fw is None:
        return await create(session, principal, doc, publish=publish)
    if fw.tenant_id == SYSTEM_TENANT_ID:
        raise Conflict(
            f"{doc.key!r} is a built-in template and read-only; import under another key."
        )
    return await _new_version(session, principal, fw, doc, publish=publish)


async def _new_version(
    session: AsyncSession,
    principal: Principal,
    fw: Framework,
    doc: FrameworkDocument,
    *,
    publish: bool,
) -> ResolvedVersion:
    versions = await repo.versions_of(session, fw)
    open_draft = next((v for v in versions if v.status == "draft"), None)
    if open_draft is not None:
        raise Conflict(
            f"Framework {fw.key!r} already has draft version {open_draft.version}; update or publish it."
        )
    if doc.competency_map is not None:
        previous = FrameworkDocument.model_validate(versions[-1].content) if versions else None
        evolution.check_map(doc.competency_map, previous, doc)
    number = max((v.version for v in versions), default=0) + 1
    row = await _add_version(session, fw, doc, number, publish)
    _sync_framework_fields(fw, doc)
    session.add(fw)
    record(
        session,
        principal,
        "framework_version.created",
        "framework",
        fw.key,
        {"version": number, "published": publish},
    )
    await _flush_unique(session, fw.key)
    return ResolvedVersion(fw, row)


def _sync_framework_fields(fw: Framework, doc: FrameworkDocument) -> None:
    fw.name, fw.description, fw.updated_at = doc.name, doc.description, utcnow()


async def new_draft(
    session: AsyncSession, principal: Principal, key: str, doc: FrameworkDocument | None
) -> ResolvedVersion:
    """Start a new draft: from the given document, or a copy of the newest version."""
    fw = await _own_writable(session, principal, key)
    if doc is None:
        versions = await repo.versions_of(session, fw)
        # The copy starts a new step: the newest version's map and notes described its own.
        doc = FrameworkDocument.model_validate(versions[-1].content).model_copy(
            update={"competency_map": None, "release_notes": None}
        )
    _same_key(doc, key)
    ensure_valid(doc)
    return await _new_version(session, principal, fw, doc, publish=False)


def _same_key(doc: FrameworkDocument, key: str) -> None:
    if doc.key != key:
        raise InvalidInput(
            f"The document's key {doc.key!r} does not match the framework {key!r}.",
            errors=[FieldError(loc=["body", "key"], msg=f"must be {key!r}", type="mismatch")],
        )


async def update_draft(
    session: AsyncSession,
    principal: Principal,
    key: str,
    version: int,
    doc: FrameworkDocument,
    if_match: str | None,
) -> ResolvedVersion:
    """Replace a draft's document; published and archived versions never change."""
    fw = await _own_writable(session, principal, key)
    row = await repo.get_version(session, fw, version)
    if row is None:
        raise NotFound(f"Framework {key!r} has no version {version}.")
    current = ResolvedVersion(fw, row)
    if row.status != "draft":
        raise Conflict(
            f"Version {version} of {key!r} is {row.status} and cannot change; start a new draft."
        )
    check_if_match(if_match, current.etag)
    _same_key(doc, key)
    ensure_valid(doc)
    if doc.competency_map is not None:
        previous = await repo.get_version(session, fw, version - 1)
        evolution.check_map(
            doc.competency_map,
            None if previous is None else FrameworkDocument.model_validate(previous.content),
            doc,
        )
    values = {"content": dump_document(doc), "revision": row.revision + 1, "updated_at": utcnow()}
    await guarded_update(session, FrameworkVersion, row, values)
    await case_index.reindex_version(session, fw, row)
    _sync_framework_fields(fw, doc)
    session.add(fw)
    record(session, principal, "framework_version.updated", "framework", key, {"version": version})
    await session.flush()
    return current


async def publish(
    session: AsyncSession, principal: Principal, key: str, version: int
) -> ResolvedVersion:
    """Publish a draft; the previously published version becomes archived."""
    fw = await _own_writable(session, principal, key)
    row = await repo.get_version(session, fw, version)
    if row is None:
        raise NotFound(f"Framework {key!r} has no version {version}.")
    if row.status != "draft":
        raise Conflict(f"Version {version} of {key!r} is already {row.status}.")
    now = utcnow()
    values = {"status": "published", "published_at": now, "updated_at": now}
    try:
        # Of concurrent publishes of the draft, one moves its revision; the rest match no row.
        await guarded_update(
            session, FrameworkVersion, row, {**values, "revision": row.revision + 1}
        )
    except PreconditionFailed:
        raise Conflict(
            f"Version {version} of {key!r} was published or changed by another request while "
            "this one ran."
        ) from None
    await _archive_older(session, fw, version)
    record(
        session, principal, "framework_version.published", "framework", key, {"version": version}
    )
    previous = await repo.get_version(session, fw, version - 1)
    await evolution.announce_published(session, principal.tenant_id, key, previous, row)
    await session.flush()
    return ResolvedVersion(fw, row)


async def clone(
    session: AsyncSession,
    principal: Principal,
    key: str,
    new_key: str,
    name: str | None,
    version: int | None,
) -> ResolvedVersion:
    """Copy a visible framework version into a new framework of the tenant, as draft 1."""
    source = await resolve(session, principal, key, version)
    doc = FrameworkDocument.model_validate(source.version.content)
    doc = doc.model_copy(update={"key": new_key, "name": name or doc.name})
    await _assert_key_free(session, principal, new_key)
    fw = Framework(
        tenant_id=principal.tenant_id,
        key=new_key,
        name=doc.name,
        description=doc.description,
        cloned_from=f"{key}@{source.version.version}",
    )
    session.add(fw)
    await session.flush()
    row = await _add_version(session, fw, doc, 1, publish=False)
    record(
        session,
        principal,
        "framework.cloned",
        "framework",
        new_key,
        {"source": key, "source_version": source.version.version},
    )
    await _flush_unique(session, new_key)
    return ResolvedVersion(fw, row)


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


async def ensure_builtin(session: AsyncSession) -> list[str]:
    """Load the built-in framework files; idempotent, a changed file becomes a new version."""
    await bind_tenant(session, SYSTEM_TENANT_ID)
    loaded = []
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        doc = parse_document(load_file(path.read_bytes(), path.name))
        content = dump_document(doc)
        fw = await repo.find_framework(session, SYSTEM_TENANT_ID, doc.key)
        if fw is None:
            fw = Framework(
                tenant_id=SYSTEM_TENANT_ID,
                key=doc.key,
                name=doc.name,
                description=doc.description,
                is_builtin=True,
            )
            session.add(fw)
            await session.flush()
            await _add_version(session, fw, doc, 1, publish=True)
            loaded.append(doc.key)
            continue
        latest = await repo.latest_published(session, fw)
        if latest is not None and _digest(latest.content) == _digest(content):
            continue
        number = await repo.max_version(session, fw) + 1
        await _add_version(session, fw, doc, number, publish=True)
        _sync_framework_fields(fw, doc)
        session.add(fw)
        loaded.append(doc.key)
    await session.flush()
    return loaded


def scale_values(version: FrameworkVersion) -> frozenset[int]:
    """The proficiency values a version's scale allows."""
    return frozenset(int(p["value"]) for p in version.content["scale"])
