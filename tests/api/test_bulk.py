"""Bulk ingest of subjects and assessments: all-or-nothing by default, partial on request."""

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import bulk as app_bulk
from app.assessments import bulk as assessments_bulk
from app.bulk import iter_items
from app.errors import FieldError, InvalidInput
from tests.api.test_subjects_assessments import assessment, subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio


def rated(ref: str, role: str = "manager", value: int = 3) -> dict[str, Any]:
    return assessment(
        ref,
        role=role,
        ratings=[
            {"competency": "execution", "proficiency": value},
            {"competency": "communication", "proficiency": value},
        ],
    )


async def test_bulk_subjects_then_assessments(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    r = await client.post(
        "/v1/subjects/bulk", json=[subject(f"emp-{i}") for i in range(50)], headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 50
    body = [rated(f"emp-{i}") for i in range(50)]
    r = await client.post("/v1/assessments/bulk", json=body, headers=h)
    assert r.status_code == 201, r.text
    result = r.json()
    assert (result["created"], result["ratings_created"], result["refused"]) == (50, 100, [])
    one = await client.get(f"/v1/assessments/{result['ids'][7]}", headers=h)
    assert one.json()["subject_ref"] == "emp-7"
    assert {x["competency"]: x["proficiency"] for x in one.json()["ratings"]} == {
        "execution": 3,
        "communication": 3,
    }
    score = await client.get("/v1/subjects/emp-7/score", headers=h)
    assert score.status_code == 200
    assert score.json()["explanation"]["distinct_raters"] == 1


async def test_ndjson_stream(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects/bulk", json=[subject("a"), subject("b")], headers=h)
    stream = "\n".join(json.dumps(rated(ref)) for ref in ("a", "b")) + "\n"
    r = await client.post(
        "/v1/assessments/bulk",
        content=stream,
        headers={**h, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 2


async def test_one_bad_item_refuses_the_batch(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects/bulk", json=[subject("a"), subject("b")], headers=h)
    bad = rated("b")
    bad["ratings"][1]["proficiency"] = 42
    r = await client.post(
        "/v1/assessments/bulk", json=[rated("a"), bad, rated("nobody")], headers=h
    )
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["errors"]]
    assert ["body", 1, "ratings", 1, "proficiency"] in locs
    assert ["body", 2, "subject_ref"] in locs
    assert (await client.get("/v1/assessments", headers=h)).json()["items"] == []


async def test_partial_mode_stores_the_valid_items(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects/bulk", json=[subject("a")], headers=h)
    r = await client.post(
        "/v1/assessments/bulk",
        params={"mode": "partial"},
        json=[rated("a"), {"nonsense": True}, rated("ghost")],
        headers=h,
    )
    assert r.status_code == 201
    result = r.json()
    assert result["created"] == 1
    assert [x["index"] for x in result["refused"]] == [1, 2]
    r = await client.post(
        "/v1/subjects/bulk",
        params={"mode": "partial"},
        json=[subject("a"), subject("c"), subject("c")],
        headers=h,
    )
    assert r.json()["created"] == 1
    assert [x["index"] for x in r.json()["refused"]] == [0, 2]


async def test_partial_mode_that_creates_nothing_is_not_created(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # `[{}]` in partial mode answered 201 with created: 0; a request that created nothing is
    # refused like an all-or-nothing one, every reason listed, and its key is not used up.
    h = {**tenant_a.headers, "Idempotency-Key": "nothing-created"}
    for url, items in (
        ("/v1/subjects/bulk", [{}, {"external_ref": ""}]),
        ("/v1/assessments/bulk", [{"nonsense": True}, rated("ghost")]),
    ):
        r = await client.post(url, params={"mode": "partial"}, json=items, headers=h)
        assert r.status_code == 422, (url, r.text)
        problem = r.json()
        assert "2 of 2 item(s) are invalid; nothing was stored" in problem["detail"]
        assert {e["loc"][1] for e in problem["errors"]} == {0, 1}, problem
    r = await client.get("/v1/assessments", headers=tenant_a.headers)
    assert r.json()["items"] == []
    r = await client.post(
        "/v1/subjects/bulk", params={"mode": "partial"}, json=[subject("later")], headers=h
    )
    assert r.status_code == 201, r.text  # the key was not spent on the refusals


async def test_bulk_body_errors(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    for content, ctype in (
        (b"{}", "application/json"),
        (b"[]", "application/json"),
        (b"not json", "application/json"),
        (b'{"a": 1}\n{oops\n', "application/x-ndjson"),
    ):
        r = await client.post(
            "/v1/assessments/bulk", content=content, headers={**h, "Content-Type": ctype}
        )
        assert r.status_code == 422, content
        assert r.headers["content-type"] == "application/problem+json"


# ---------------------------------------------------------------- bounded batches
#
# Bulk assessments are decoded item by item and stored BATCH_ITEMS at a time inside the one
# transaction; these tests shrink the batch so that a few items cross several batches.


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(assessments_bulk, "BATCH_ITEMS", 4)
    return 4


async def subjects(client: httpx.AsyncClient, tenant: Tenant, count: int) -> list[str]:
    refs = [f"emp-{i}" for i in range(count)]
    r = await client.post(
        "/v1/subjects/bulk", json=[subject(ref) for ref in refs], headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    return refs


def ndjson(items: list[Any]) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


async def post_bulk(
    client: httpx.AsyncClient,
    tenant: Tenant,
    content: str,
    form: str,
    mode: str = "all_or_nothing",
    key: str | None = None,
) -> httpx.Response:
    headers = {
        **tenant.headers,
        "Content-Type": "application/x-ndjson" if form == "ndjson" else "application/json",
        **({"Idempotency-Key": key} if key else {}),
    }
    return await client.post(
        "/v1/assessments/bulk", params={"mode": mode}, content=content, headers=headers
    )


def encoded(items: list[Any], form: str) -> str:
    return ndjson(items) if form == "ndjson" else json.dumps(items)


async def stored(client: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    r = await client.get("/v1/assessments", params={"limit": 200}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_every_insert_is_bounded_by_the_batch(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    engine: AsyncEngine,
    connection: AsyncConnection,
    small_batches: int,
) -> None:
    if connection.dialect.name != "postgresql":
        pytest.skip("counts the rows of Postgres' set-wise INSERT ... unnest statements")
    refs = await subjects(client, tenant_a, 10)
    inserted: list[tuple[int, int]] = []  # (assessments, ratings) of each INSERT

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "INSERT INTO rating " in statement:
            sizes = [len(p) for p in parameters if isinstance(p, list)]
            inserted.append((min(sizes), max(sizes)))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        r = await client.post(
            "/v1/assessments/bulk", json=[rated(ref) for ref in refs], headers=tenant_a.headers
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert r.status_code == 201, r.text
    assert inserted == [(4, 8), (4, 8), (2, 4)]
    assert (r.json()["created"], r.json()["ratings_created"]) == (10, 20)


@pytest.mark.parametrize("form", ["array", "ndjson"])
@pytest.mark.parametrize("count", [4, 8, 9])
async def test_batch_boundaries_keep_request_order(
    client: httpx.AsyncClient, tenant_a: Tenant, small_batches: int, form: str, count: int
) -> None:
    refs = await subjects(client, tenant_a, count)
    r = await post_bulk(client, tenant_a, encoded([rated(ref) for ref in refs], form), form)
    assert r.status_code == 201, r.text
    result = r.json()
    assert (result["received"], result["created"], result["ratings_created"]) == (
        count,
        count,
        2 * count,
    )
    assert len(set(result["ids"])) == count
    for i in {0, small_batches - 1, small_batches, count - 1} & set(range(count)):
        one = await client.get(f"/v1/assessments/{result['ids'][i]}", headers=tenant_a.headers)
        assert one.json()["subject_ref"] == refs[i]
    assert len(await stored(client, tenant_a)) == count


@pytest.mark.parametrize("form", ["array", "ndjson"])
async def test_a_refusal_in_the_last_batch_stores_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant, small_batches: int, form: str
) -> None:
    refs = await subjects(client, tenant_a, 8)
    body = encoded([*(rated(ref) for ref in refs), rated("nobody")], form)
    r = await post_bulk(client, tenant_a, body, form)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in r.json()["errors"]] == [["body", 8, "subject_ref"]]
    assert r.json()["detail"].startswith("1 of 9 item(s) are invalid; nothing was stored")
    assert await stored(client, tenant_a) == []

    r = await post_bulk(client, tenant_a, body, form, mode="partial")
    assert r.status_code == 201, r.text
    assert (r.json()["created"], [x["index"] for x in r.json()["refused"]]) == (8, [8])
    assert len(await stored(client, tenant_a)) == 8


async def test_all_or_nothing_reports_refusals_from_every_batch(
    client: httpx.AsyncClient, tenant_a: Tenant, small_batches: int
) -> None:
    refs = await subjects(client, tenant_a, 10)
    items: list[Any] = [rated(ref) for ref in refs]
    items[1] = {"nonsense": True}
    items[9]["ratings"][0]["proficiency"] = 42
    r = await client.post("/v1/assessments/bulk", json=items, headers=tenant_a.headers)
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["errors"]]
    assert ["body", 1, "nonsense"] in locs
    assert locs[-1] == ["body", 9, "ratings", 0, "proficiency"]
    assert r.json()["detail"].startswith("2 of 10 item(s) are invalid")
    assert await stored(client, tenant_a) == []


@pytest.mark.parametrize("mode", ["all_or_nothing", "partial"])
@pytest.mark.parametrize("form", ["array", "ndjson"])
async def test_a_malformed_item_after_many_good_ones_stores_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant, small_batches: int, form: str, mode: str
) -> None:
    refs = await subjects(client, tenant_a, 10)
    good = encoded([rated(ref) for ref in refs], form)
    broken = (
        good[:-1] + ', {"subject_ref": "emp-1", oops}]' if form == "array" else good + "{oops\n"
    )
    r = await post_bulk(client, tenant_a, broken, form, mode=mode, key="retry-me")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    [error] = r.json()["errors"]
    if form == "ndjson":
        assert error["loc"] == ["body", 10]
        assert error["msg"].startswith("Line 11 is not JSON: Expecting property name")
    else:
        offset = broken.index("oops")
        assert error["msg"] == (
            "The body is not JSON: Expecting property name enclosed in double quotes: "
            f"line 1 column {offset + 1} (char {offset})"
        )
    assert await stored(client, tenant_a) == []
    # Nothing was stored and the key was not used up: the corrected request goes through.
    r = await post_bulk(client, tenant_a, good, form, mode=mode, key="retry-me")
    assert r.status_code == 201, r.text
    assert len(await stored(client, tenant_a)) == 10


async def test_too_many_items_after_stored_batches_stores_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any, small_batches: int
) -> None:
    refs = await subjects(client, tenant_a, 7)
    app.state.settings = app.state.settings.model_copy(update={"max_bulk_items": 6})
    for form in ("array", "ndjson"):
        r = await post_bulk(client, tenant_a, encoded([rated(ref) for ref in refs], form), form)
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "At most 6 items per request; split the batch."
    assert await stored(client, tenant_a) == []


async def test_webhook_events_across_batches(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any, small_batches: int
) -> None:
    h = tenant_a.headers
    app.state.settings = app.state.settings.model_copy(
        update={"webhooks_allow_private_targets": True}
    )
    r = await client.post(
        "/v1/webhooks",
        json={
            "url": "http://127.0.0.1:9/hooks",
            "events": ["assessment.created", "readiness.changed"],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    refs = await subjects(client, tenant_a, 6)
    # emp-0 is rated in the first and in the last batch: still one change.
    items = [rated(ref, value=2) for ref in refs] + [rated("emp-0", role="peer", value=4)] * 3
    r = await client.post("/v1/assessments/bulk", json=items, headers=h)
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    log = await client.get(f"/v1/webhooks/{hook}/deliveries", params={"limit": 200}, headers=h)
    assert log.status_code == 200, log.text
    rows = log.json()["items"]
    deliveries = [d["payload"]["data"] for d in rows]
    created = [d for d in deliveries if "assessment_id" in d]
    assert sorted(d["assessment_id"] for d in created) == sorted(ids)
    assert {d["assessment_id"]: d["subject_ref"] for d in created} == {
        aid: item["subject_ref"] for aid, item in zip(ids, items, strict=True)
    }
    changes = [d for d in deliveries if "before" in d]
    assert sorted(d["subject_ref"] for d in changes) == sorted(refs)
    # Each change starts from where the person stood before the request (no ratings yet).
    assert all(d["before"]["level_index"] == 0 < d["after"]["level_index"] for d in changes)


# ---------------------------------------------------------------- the item-by-item decoder


BODIES = [
    '[{"a": 1}, {"b": [1.5e3, -2.25, "\\u00e9\\ud83d\\ude00"]}, "x", 12345678901234567890]',
    '[\n  {"evidence": "caf\u00e9 \ud83d\ude00 \u2028 line"},\n  -0.5e-3,\n  true, false, null\n]\n',
    "\ufeff[1]",
    "",
    "   \n ",
    "[",
    "[1,]",
    "[1 2]",
    '[{"a": 1}\n, {"a": tru}]',
    '[{"a": "unterminated}]',
    '[{"a": "bad \\x escape"}]',
    "[1.]",
    "[1]\n x",
    "[]",
    "[[[[[[1]]]]]]",
]


def expected(raw: bytes) -> tuple[str, Any]:
    """What decoding the whole body at once says (the behaviour before item-by-item decoding)."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "error", "The body is not valid UTF-8."
    except ValueError as exc:
        return "error", f"The body is not JSON: {exc}"
    return ("items", value) if value else ("error", "Send at least one item.")


def first_error(exc: InvalidInput) -> FieldError:
    assert exc.errors
    return exc.errors[0]


@pytest.mark.parametrize("window", [1, 2, 3, 7, 1 << 20])
@pytest.mark.parametrize("body", BODIES)
def test_arrays_decode_as_one_json_loads_would(
    monkeypatch: pytest.MonkeyPatch, body: str, window: int
) -> None:
    monkeypatch.setattr(app_bulk, "WINDOW_BYTES", window)
    raw = body.encode("utf-8", "surrogatepass")
    try:
        got: tuple[str, Any] = ("items", list(iter_items(raw, "application/json", 100)))
    except InvalidInput as exc:
        got = ("error", first_error(exc).msg)
    assert got == expected(raw)


@pytest.mark.parametrize("window", [1, 5, 1 << 20])
def test_invalid_utf8_anywhere_is_named_first(monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    monkeypatch.setattr(app_bulk, "WINDOW_BYTES", window)
    for raw, media in (
        (b'[{"a": oops}, "\xff"]', "application/json"),
        (b'{"a": 1}\n{oops\n"\xc3"\n', "application/x-ndjson"),
    ):
        with pytest.raises(InvalidInput) as caught:
            list(iter_items(raw, media, 100))
        assert first_error(caught.value).msg == "The body is not valid UTF-8."


def test_ndjson_lines_end_with_lf_crlf_or_cr() -> None:
    raw = b'{"n": 1}\r\n\r\n{"n": 2}\r{"n": "\xe2\x80\xa8"}\n'
    assert list(iter_items(raw, "application/x-ndjson", 100)) == [
        {"n": 1},
        {"n": 2},
        {"n": "\u2028"},
    ]
    with pytest.raises(InvalidInput) as caught:
        list(iter_items(b'{"n": 1}\r\n\r\n{oops', "application/x-ndjson", 100))
    assert first_error(caught.value).loc == ["body", 2]


def test_items_are_decoded_only_as_they_are_consumed() -> None:
    raw = b"[" + b",".join([b'{"n": 1}'] * 5) + b", oops]"
    items = iter_items(raw, "application/json", 100)
    assert [next(items) for _ in range(5)] == [{"n": 1}] * 5
    with pytest.raises(InvalidInput):
        next(items)
