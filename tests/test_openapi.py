"""The committed OpenAPI document is the app's, and every route documents its errors."""

import json

from app.config import PROJECT_ROOT, Settings
from app.main import create_app

OPENAPI_FILE = PROJECT_ROOT / "openapi" / "openapi.json"


def _current() -> dict[str, object]:
    return create_app(Settings(load_builtin_frameworks=False)).openapi()


def test_committed_openapi_matches_the_app() -> None:
    committed = json.loads(OPENAPI_FILE.read_text())
    assert committed == _current(), "openapi/openapi.json drifted: run `make openapi` and commit it"


def test_every_operation_documents_problem_responses() -> None:
    doc = _current()
    for path, item in doc["paths"].items():  # type: ignore[attr-defined]
        for method, op in item.items():
            codes = set(op["responses"])
            if path == "/healthz":  # liveness never fails while the process can answer
                continue
            assert codes & {"400", "401", "404", "422", "503"}, (
                f"{method.upper()} {path} documents no errors"
            )
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in response.get("content", {}), (
                        method,
                        path,
                        code,
                    )
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
