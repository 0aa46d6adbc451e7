"""Realistic examples in the OpenAPI document, on every operation's parameters, body and answers.

The examples were recorded from the real app by development tooling (`tools/openapi/`, run by
`make openapi`) into `openapi/examples.json`, beside the committed document: Ada, a PM rated
against the built-in ladder, her score, gaps and plan, a small ladder through its life, and a few
refusals. Swagger UI fills "Try it out" with them and shows them next to each response schema.
FastAPI cannot take recorded examples from a file, so they are added to the generated document
here; without the file (an installation without the repository's `openapi/`) the document simply
has none.
"""

import copy
import json
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT
from app.errors import PROBLEM_BASE

EXAMPLES_FILE = PROJECT_ROOT / "openapi" / "examples.json"


def load_examples(path: Path = EXAMPLES_FILE) -> dict[str, Any]:
    """The recorded examples: ``"METHOD /path"`` -> parameters, request and responses."""
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _name(example: dict[str, Any]) -> str:
    """A problem example is named by its problem type (`not-found`), any other `example`."""
    value = example["value"]
    if isinstance(value, dict) and str(value.get("type", "")).startswith(PROBLEM_BASE):
        return str(value["type"]).removeprefix(PROBLEM_BASE)
    return "example"


def _put(content: dict[str, Any], media: str, example: dict[str, Any]) -> None:
    if media in content:
        content[media]["examples"] = {_name(example): copy.deepcopy(example)}


def add_examples(schema: dict[str, Any], examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of the document with the recorded examples added; the input is left unchanged.

    Examples of an operation, parameter, status or media type the document does not have are
    skipped, so a changed route never breaks the served document; a test names them instead.
    Applying it twice gives the same document.
    """
    doc = copy.deepcopy(schema)
    recorded = load_examples() if examples is None else examples
    paths: dict[str, Any] = doc.get("paths", {})
    for key, example in recorded.items():
        method, path = key.split(" ", 1)
        op = paths.get(path, {}).get(method.lower())
        if op is None:
            continue
        for param in op.get("parameters", []):
            values = example["parameters"].get(param["in"], {})
            # A parameter's `example` and `examples` exclude each other; keep one declared in code.
            if param["name"] in values and "examples" not in param:
                param["example"] = copy.deepcopy(values[param["name"]])
        body = op.get("requestBody", {}).get("content", {})
        for media, request in example["request"].items():
            _put(body, media, request)
        for status, answers in example["responses"].items():
            content = op["responses"].get(status, {}).get("content", {})
            for media, answer in answers.items():
                _put(content, media, answer)
    return doc
