"""Who is calling: the tenant and key behind a request."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    key_id: uuid.UUID | None
    scopes: frozenset[str]
