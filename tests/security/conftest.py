"""Fixtures of the security suite: tenant A owning one of everything, tenant B owning little."""

import httpx
import pytest

from tests.conftest import Tenant
from tests.security.support import World, seed, subject_body


@pytest.fixture
async def world_a(client: httpx.AsyncClient, tenant_a: Tenant) -> World:
    return await seed(client, tenant_a)


@pytest.fixture
async def b_subject(client: httpx.AsyncClient, tenant_b: Tenant) -> str:
    """Tenant B's own subject, under a ref tenant A does not use."""
    r = await client.post("/v1/subjects", json=subject_body("emp-b"), headers=tenant_b.headers)
    assert r.status_code == 201, r.text
    return "emp-b"
