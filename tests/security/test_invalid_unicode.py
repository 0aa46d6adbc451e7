"""Lone surrogates anywhere in a request: a 422 naming the field, and nothing stored.

JSON can carry a code point UTF-8 cannot encode as an escape (``"\\udfff"``). Such a request
once answered 500 after its framework version was stored and published (and each retry added
another version). Bodies here are written with ``json.dumps`` (ASCII escapes), as the wire
carries them.
"""

import json
import uuid
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request

from app import idempotency, unicode
from app.auth import repository as auth_repo
from app.auth import service as auth_service
from app.auth.principal import Principal
from tests.conftest import Tenant
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
LONE = "\udfff"


def escaped(body: Any) -> bytes:
    """The body as JSON with every non-ASCII character escaped, surrogates included."""
    return json.dumps(body).encode("ascii")


def assert_refused(r: httpx.Response, *locs: list[Any]) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["type"].endswith("/validation-error")
    found = [e["loc"] for e in problem["errors"]]
    for loc in locs:
        assert loc in found, found


async def case_package(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    r = await client.get(
        "/v1/frameworks/product-management/versions/1/export/case", headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    package: dict[str, Any] = r.json()
    return package


async def test_case_import_with_a_lone_surrogate_in_a_dropped_field_stores_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    package = await case_package(client, tenant_a)
    package["CFDocument"]["notes"] = f"kept nowhere {LONE}"
    url = "/v1/frameworks/import/case?key=hostile-pm&publish=true"
    headers = {**tenant_a.headers, "Content-Type": "application/json"}
    for _ in range(3):  # retries must not add versions either
        r = await client.post(url, content=escaped(package), headers=headers)
        assert_refused(r, ["body", "CFDocument", "notes"])
    assert (
        await client.get("/v1/frameworks/hostile-pm", headers=tenant_a.headers)
    ).status_code == 404
    del package["CFDocument"]["notes"]
    r = await client.post(url, content=escaped(package), headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["framework"]["version"] == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"external_ref": "u-1", "display_name": f"Ada {LONE}"}, ["body", "display_name"]),
        (
            {"external_ref": "u-1", "attributes": {"team": "\ud800x"}},
            ["body", "attributes", "team"],
        ),
        (
            {"external_ref": "u-1", "attributes": {f"t{LONE}": "x"}},
            ["body", "attributes", "t\\udfff"],
        ),
        # A field the schema does not know (refused anyway) and a deeply nested one.
        ({"external_ref": "u-1", "extra": [{"deep": [1, LONE]}]}, ["body", "extra", 0, "deep", 1]),
        # A high surrogate followed by another high one is not a pair.
        ({"external_ref": "u-1", "display_name": "\ud83d\ud83d"}, ["body", "display_name"]),
    ],
)
async def test_subject_create_refuses_lone_surrogates(
    client: httpx.AsyncClient, tenant_a: Tenant, body: dict[str, Any], loc: list[Any]
) -> None:
    headers = {**tenant_a.headers, "Content-Type": "application/json"}
    r = await client.post("/v1/subjects", content=escaped(body), headers=headers)
    assert_refused(r, loc)
    assert (await client.get("/v1/subjects/u-1", headers=tenant_a.headers)).status_code == 404


async def test_surrogate_bytes_encoded_as_if_utf8_are_refused(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # json.loads decodes bytes with "surrogatepass": ED BF BF would become U+DFFF.
    body = b'{"external_ref": "u-2", "display_name": "Ada \xed\xbf\xbf"}'
    headers = {**tenant_a.headers, "Content-Type": "application/json"}
    r = await client.post("/v1/subjects", content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert (await client.get("/v1/subjects/u-2", headers=tenant_a.headers)).status_code == 404


async def test_valid_surrogate_pairs_are_welcome(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    body = {"external_ref": "u-3", "display_name": "Ada \U0001f600"}
    headers = {**tenant_a.headers, "Content-Type": "application/json"}
    r = await client.post("/v1/subjects", content=escaped(body), headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["display_name"] == "Ada \U0001f600"


async def test_a_backslash_followed_by_udfff_is_plain_text(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # An escaped backslash and the letters "udfff": no surrogate, nothing to refuse.
    body = b'{"external_ref": "u-5", "display_name": "C:\\\\udfff"}'
    headers = {**tenant_a.headers, "Content-Type": "application/json"}
    r = await client.post("/v1/subjects", content=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["display_name"] == "C:\\udfff"


async def test_bulk_ndjson_refuses_a_lone_surrogate_on_any_line(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lines = [
        {"external_ref": "bulk-1", "display_name": "fine"},
        {"external_ref": "bulk-2", "display_name": f"not {LONE}"},
    ]
    stream = b"\n".join(escaped(line) for line in lines) + b"\n"
    r = await client.post(
        "/v1/subjects/bulk",
        content=stream,
        headers={**tenant_a.headers, "Content-Type": "application/x-ndjson"},
    )
    assert_refused(r, ["body", 1, "display_name"])
    listed = await client.get("/v1/subjects", headers=tenant_a.headers)
    assert listed.json()["items"] == []


async def test_bulk_arrays_are_checked_item_by_item_never_decoded_whole(
    client: httpx.AsyncClient, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any emoji a client escapes as a surrogate pair (json.dumps does by default) sends a bulk
    # body to the careful check; a maximum-size body decoded whole cost about 190 MiB more.
    def whole(raw: bytes, *, yaml_text: bool) -> None:
        raise AssertionError(f"a bulk body of {len(raw)} bytes was decoded whole")

    monkeypatch.setattr(unicode, "_decode", whole)
    items = [
        {
            "external_ref": f"emoji-{i}",
            "display_name": "Ada \N{GRINNING FACE}",
        }
        for i in range(3)
    ]
    r = await client.post(
        "/v1/subjects/bulk",
        content=escaped(items),  # the emoji goes out as the pair \ud83d\ude00
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert b"\\ud83d\\ude00" in escaped(items)
    items.append({"external_ref": "emoji-bad", "display_name": f"not {LONE}"})
    r = await client.post(
        "/v1/subjects/bulk",
        content=escaped(items),
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    assert_refused(r, ["body", 3, "display_name"])


async def test_framework_file_in_yaml_refuses_an_escaped_surrogate(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    document = small_framework(key="yaml-hostile", description="PLACEHOLDER")
    text = json.dumps(document)  # JSON is YAML; the escape is YAML's too
    text = text.replace('"PLACEHOLDER"', '"bad \\udfff"', 1)
    r = await client.post(
        "/v1/frameworks/import",
        content=text.encode(),
        headers={**tenant_a.headers, "Content-Type": "application/yaml"},
    )
    assert_refused(r, ["body", "description"])
    missing = await client.get("/v1/frameworks/yaml-hostile", headers=tenant_a.headers)
    assert missing.status_code == 404


async def test_framework_create_refuses_a_surrogate_in_a_key(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    document = small_framework(key="key-hostile")
    document["levels"][0][f"x{LONE}"] = 1
    headers = {**tenant_a.headers, "Content-Type": "application/json"}
    r = await client.post("/v1/frameworks", content=escaped(document), headers=headers)
    assert_refused(r, ["body", "levels", 0, "x\\udfff"])
    missing = await client.get("/v1/frameworks/key-hostile", headers=tenant_a.headers)
    assert missing.status_code == 404


async def test_query_strings_that_are_not_utf8_are_refused(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # Percent-escapes of a surrogate's bytes: once quietly read as U+FFFD and matched against.
    r = await client.get("/v1/subjects?attribute=team:%ED%BF%BF", headers=tenant_a.headers)
    assert_refused(r, ["query", "attribute"])
    document = small_framework(key="query-hostile")
    r = await client.post(
        "/v1/frameworks?publish=%ED%BF%BF", json=document, headers=tenant_a.headers
    )
    assert_refused(r, ["query", "publish"])
    missing = await client.get("/v1/frameworks/query-hostile", headers=tenant_a.headers)
    assert missing.status_code == 404


async def test_without_a_key_the_answer_is_401_not_422(client: httpx.AsyncClient) -> None:
    body = escaped({"external_ref": "u-4", "display_name": LONE})
    r = await client.post(
        "/v1/subjects", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 401
    r = await client.get("/v1/subjects?cursor=%ED%BF%BF")
    assert r.status_code == 401


async def test_unknown_routes_stay_404(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = escaped({"x": LONE})
    r = await client.post(
        "/v1/nowhere",
        content=body,
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 404


class Answer(BaseModel):
    text: str


@pytest.mark.parametrize("key", [None, "render-first"])
async def test_an_answer_that_cannot_be_rendered_commits_nothing(
    app: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_a: Tenant,
    key: str | None,
) -> None:
    """The last line of defence: creates render their answer before they commit."""
    slug = f"never-{uuid.uuid4().hex[:8]}"
    body = b"{}"

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [], "query_string": b""}
    request = Request({**scope, "app": app}, receive)
    principal = Principal(tenant_id=tenant_a.id, key_id=None, scopes=frozenset({"admin"}))
    async with sessionmaker() as session:

        async def produce() -> tuple[BaseModel, dict[str, str]]:
            await auth_service.create_tenant(session, slug, "Never")
            return Answer(text=f"cannot be encoded {LONE}"), {}

        with pytest.raises(PydanticSerializationError):
            await idempotency.execute(session, principal, request, key, produce)
    async with sessionmaker() as session:
        assert await auth_repo.get_tenant_by_slug(session, slug) is None
