"""Every operation of the OpenAPI document is described and has realistic examples that fit it.

The examples come from a recorded run of the real app (`tools/openapi/`, run by `make openapi`);
the run is not repeated here. An example the app's schemas no longer accept fails here, and so
does an operation, parameter, status or media type the recording and the app disagree on.
"""

import copy
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from app.config import PROJECT_ROOT, Settings
from app.main import create_app
from app.openapi_examples import add_examples, load_examples
from app.openapi_links import add_links

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package installed; the app is strict.
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


Operation = tuple[str, dict[str, Any]]


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return create_app(Settings(load_builtin_frameworks=False)).openapi()


@pytest.fixture(scope="module")
def doc(raw: dict[str, Any]) -> dict[str, Any]:
    # Both steps are idempotent: the same document whether or not app/main.py applies them.
    return add_examples(add_links(copy.deepcopy(raw)))


def operations(doc: dict[str, Any]) -> Iterator[Operation]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield f"{method.upper()} {path}", op


def success(op: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    status = min(code for code in op["responses"] if code.startswith("2"))
    return status, op["responses"][status]


def examples(media: dict[str, Any]) -> list[Any]:
    found = [e["value"] for e in media.get("examples", {}).values()]
    return [*found, media["example"]] if "example" in media else found


def test_every_operation_has_a_summary_and_a_description(doc: dict[str, Any]) -> None:
    for key, op in operations(doc):
        assert op.get("summary", "").strip(), f"{key} has no summary"
        assert op.get("description", "").strip(), f"{key} has no description"


def test_every_json_request_body_has_an_example(doc: dict[str, Any]) -> None:
    missing = [
        key
        for key, op in operations(doc)
        if "application/json" in op.get("requestBody", {}).get("content", {})
        and not examples(op["requestBody"]["content"]["application/json"])
    ]
    assert not missing, f"no example request: {missing}"


def test_every_success_response_has_an_example(doc: dict[str, Any]) -> None:
    missing = []
    for key, op in operations(doc):
        status, response = success(op)
        content = response.get("content", {})
        if content and not examples(content.get("application/json", {})):
            missing.append(f"{key} {status}")
    assert not missing, f"no example answer: {missing}"


def _schema_of(response: dict[str, Any], media: str) -> dict[str, Any] | None:
    content = response.get("content", {})
    schema: dict[str, Any] | None = content.get(media, {}).get("schema")
    if schema is None and media == "application/problem+json":
        # error_responses() documents the problem's schema under application/json only.
        schema = content.get("application/json", {}).get("schema")
    return schema


def _examples_with_schemas(doc: dict[str, Any]) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    for key, op in operations(doc):
        for param in op.get("parameters", []):
            if "example" in param:
                yield f"{key} {param['in']} {param['name']}", param["example"], param["schema"]
        for media, body in op.get("requestBody", {}).get("content", {}).items():
            for value in examples(body):
                yield f"{key} request {media}", value, body["schema"]
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                values = examples(content)
                schema = _schema_of(response, media)
                assert schema is not None or not values, f"{key} {status} {media}: no schema"
                for value in values:
                    yield f"{key} {status} {media}", value, schema or {}


def test_every_example_fits_its_schema(doc: dict[str, Any]) -> None:
    checked, failures = 0, []
    for where, value, schema in _examples_with_schemas(doc):
        validator = Draft202012Validator(
            {**schema, "components": doc["components"]}, format_checker=FORMATS
        )
        checked += 1
        for error in validator.iter_errors(value):
            path = "/".join(map(str, error.absolute_path))
            failures.append(f"{where} at /{path}: {error.message[:300]}")
    assert checked > 100, "the document carries almost no examples"
    assert not failures, "examples that do not fit their schema:\n" + "\n".join(failures)


def test_examples_file_matches_the_operations(raw: dict[str, Any]) -> None:
    recorded = load_examples()
    ops = dict(operations(raw))
    assert sorted(set(ops) - set(recorded)) == [], "run `make openapi`: not recorded"
    assert sorted(set(recorded) - set(ops)) == [], "run `make openapi`: stale"
    stale = []
    for key, example in recorded.items():
        op = ops[key]
        params = {(p["in"], p["name"]) for p in op.get("parameters", [])}
        stale += [
            f"{key} {where} parameter {name}"
            for where, values in example["parameters"].items()
            for name in values
            if (where, name) not in params
        ]
        body = op.get("requestBody", {}).get("content", {})
        stale += [f"{key} request {media}" for media in example["request"] if media not in body]
        for status, answers in example["responses"].items():
            content = op["responses"].get(status, {}).get("content", {})
            if status not in op["responses"]:
                stale.append(f"{key} undocumented status {status}")
            stale += [f"{key} {status} {media}" for media in answers if media not in content]
    assert not stale, "run `make openapi`; recorded but not in the document:\n" + ("\n".join(stale))


def test_add_examples_leaves_its_input_alone_and_is_idempotent(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    once = add_examples(raw)
    assert raw == before
    assert once is not raw
    assert add_examples(once) == once


def test_examples_work_beside_the_quickstart_and_hold_no_secret_lookalikes(
    doc: dict[str, Any],
) -> None:
    # "Try it out" after examples/quickstart.sh must not reuse one of its Idempotency-Keys (a
    # different body under the same key is refused), and secret scanners must stay quiet.
    quickstart = (PROJECT_ROOT / "examples" / "quickstart.sh").read_text()
    quickstart_keys = re.findall(r"Idempotency-Key: ([^\"'\s]+)", quickstart)
    assert quickstart_keys, "the quickstart sends Idempotency-Keys"
    sent = [
        param["example"]
        for _, op in operations(doc)
        for param in op.get("parameters", [])
        if param["name"] == "Idempotency-Key" and "example" in param
    ]
    assert sent, "the examples show Idempotency-Key"
    for key in sent:
        assert key.startswith("docs-example-"), key
        assert not any(key.startswith(q.split("$", 1)[0]) for q in quickstart_keys), key
    text = str(doc)
    for secret in re.findall(r"\b(?:cl|whsec)_(?:[0-9a-f]{32}_)?([A-Za-z0-9_-]{16,})", text):
        assert secret.startswith("EXAMPLE-secret-"), secret
