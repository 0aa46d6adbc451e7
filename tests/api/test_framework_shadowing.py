"""A tenant's framework shadows a built-in with its key in every read, as it does in CASE."""

import httpx
import pytest

from app.auth.principal import Principal
from app.db import bind_tenant
from app.frameworks import service
from app.frameworks.document import parse_document
from app.models import SYSTEM_TENANT_ID
from tests.api.test_scores import seed_pm
from tests.conftest import Tenant
from tests.factories import small_framework
from tests.interop.test_case_index import shadow_a_builtin

pytestmark = pytest.mark.anyio


async def test_own_framework_shadows_the_builtin_with_its_key(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await shadow_a_builtin(client, tenant_a)
    for tenant, name, builtin in (
        (tenant_a, "Engineering ladder", False),
        (tenant_b, "Built-in engineering", True),
    ):
        got = await client.get("/v1/frameworks/eng-ladder", headers=tenant.headers)
        assert got.status_code == 200, got.text
        assert (got.json()["document"]["name"], got.json()["builtin"]) == (name, builtin)
        listed, cursor = [], None
        while True:  # one key per page: a shadowed built-in must not take a page of its own
            params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
            page = (
                await client.get("/v1/frameworks", params=params, headers=tenant.headers)
            ).json()
            listed += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [
            (f["key"], f["name"], f["builtin"]) for f in listed if f["key"] == "eng-ladder"
        ] == [("eng-ladder", name, builtin)]
        assert len({f["key"] for f in listed}) == len(listed)


async def test_a_score_reads_the_framework_every_other_read_sees(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """A tenant's own framework, even one with only a draft, shadows a built-in added later
    with its key in every read: a score asked against that key does not fall back to the
    built-in's published version; it answers the framework read's 404, as the framework does."""
    for tenant in (tenant_a, tenant_b):
        await seed_pm(client, tenant)
    r = await client.post("/v1/frameworks", json=small_framework(), headers=tenant_a.headers)
    assert r.status_code == 201, r.text  # a draft only
    system = Principal(tenant_id=SYSTEM_TENANT_ID, key_id=None, scopes=frozenset({"admin"}))
    async with tenant_a.sessionmaker() as session:
        await bind_tenant(session, SYSTEM_TENANT_ID)
        doc = parse_document(small_framework(name="Built-in engineering"))
        await service.create(session, system, doc, publish=True)
        await session.commit()
    framework = await client.get("/v1/frameworks/eng-ladder", headers=tenant_a.headers)
    assert framework.status_code == 404
    for path in ("score", "gaps", "recommendations"):
        url = f"/v1/subjects/emp-1/{path}?framework=eng-ladder&track=ic"
        r = await client.get(url, headers=tenant_a.headers)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["detail"] == framework.json()["detail"], path
        # Another tenant sees the built-in, which has no ratings of this person.
        r = await client.get(url, headers=tenant_b.headers)
        assert r.status_code != 404 or "eng-ladder" not in r.json()["detail"], (path, r.text)
