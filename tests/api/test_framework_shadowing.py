"""A tenant's framework shadows a built-in with its key in every read, as it does in CASE."""

import httpx
import pytest

from tests.conftest import Tenant
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
