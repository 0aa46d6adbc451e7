"""API key format, scopes, hashing and constant-time checks (no I/O).

The one definition of what a key looks like: ``<prefix>_<32 hex id>_<43-char secret>``. The
settings' prefix pattern, the token parser and the tooling that redacts keys all use it.
"""

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Literal, get_args

Scope = Literal[
    "frameworks:read",
    "frameworks:write",
    "subjects:read",
    "subjects:write",
    "assessments:read",
    "assessments:write",
    "analytics:read",
    "learning-records:read",
    "learning-records:write",
    "admin",
]
SCOPES: tuple[Scope, ...] = get_args(Scope)
ADMIN: Scope = "admin"

DEFAULT_KEY_PREFIX = "cl"
KEY_PREFIX_PATTERN = r"[a-z]{2,8}"
KEY_ID_PATTERN = r"[0-9a-f]{32}"
KEY_SECRET_PATTERN = r"[A-Za-z0-9_-]{43}"  # noqa: S105 (a pattern, not a secret)
# Named groups: prefix, id, secret. Anchor it (or bound it) where it is used.
KEY_PATTERN = (
    rf"(?P<prefix>{KEY_PREFIX_PATTERN})_(?P<id>{KEY_ID_PATTERN})_(?P<secret>{KEY_SECRET_PATTERN})"
)
KEY_SHAPE = f"{DEFAULT_KEY_PREFIX}_<id>_<secret>"

_KEY_RE = re.compile(rf"^{KEY_PATTERN}$")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly made key: the full token is shown once, only the hash is stored."""

    id: uuid.UUID
    token: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    """SHA-256 of a 256-bit random secret: brute force is hopeless, so no slow KDF is needed."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def format_token(prefix: str, key_id: uuid.UUID, secret: str) -> str:
    """The presented form of a key: ``<prefix>_<id>_<secret>``."""
    return f"{prefix}_{key_id.hex}_{secret}"


def issue_key(prefix: str) -> IssuedKey:
    """Make a new key ``<prefix>_<id>_<secret>``; the recognizable prefix helps secret scanners."""
    key_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    return IssuedKey(
        id=key_id, token=format_token(prefix, key_id, secret), secret_hash=hash_secret(secret)
    )


def parse_token(token: str, prefix: str) -> tuple[uuid.UUID, str] | None:
    """Split a presented token into (key id, secret), or None when it is malformed.

    A token with another prefix than the service's is malformed: the prefix is part of the key,
    and a key copied from another service or environment must not authenticate here.
    """
    match = _KEY_RE.match(token)
    if match is None or match["prefix"] != prefix:
        return None
    return uuid.UUID(hex=match["id"]), match["secret"]


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def grants(held: frozenset[str], needed: str) -> bool:
    """True when the held scopes allow the needed one (admin allows everything)."""
    return needed in held or ADMIN in held
