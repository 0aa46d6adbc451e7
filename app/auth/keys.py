"""API key format, hashing and constant-time checks (no I/O)."""

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

SCOPES = (
    "frameworks:read",
    "frameworks:write",
    "subjects:read",
    "subjects:write",
    "assessments:read",
    "assessments:write",
    "analytics:read",
    "admin",
)
ADMIN = "admin"

_KEY_RE = re.compile(r"^(?P<prefix>[a-z]{2,8})_(?P<id>[0-9a-f]{32})_(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly made key: the full token is shown once, only the hash is stored."""

    id: uuid.UUID
    token: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    """SHA-256 of a 256-bit random secret: brute force is hopeless, so no slow KDF is needed."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def issue_key(prefix: str) -> IssuedKey:
    """Make a new key ``<prefix>_<id>_<secret>``; the recognizable prefix helps secret scanners."""
    key_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    return IssuedKey(
        id=key_id, token=f"{prefix}_{key_id.hex}_{secret}", secret_hash=hash_secret(secret)
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
