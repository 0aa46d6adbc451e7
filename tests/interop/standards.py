"""The official 1EdTech CASE 1.1 definitions, to check what the service writes against them.

Read from where they are kept outside the project (their README asks that they not be copied
in): ``CASE_STANDARDS_DIR``, by default ``shared/standards/case-1.1`` beside the project's
folder (where the team's shared files and CI's copy of them live). They are published
at https://purl.imsglobal.org/spec/case/v1p1/schema/json/case_v1p1_cfpackage-jsonschema1.json
(the CFPackage JSON Schema, draft 2019-09) and
https://purl.imsglobal.org/spec/case/v1p1/schema/openapi/imscasev1p1_openapi3_v1p0.json (the
REST binding, whose component schemas describe the single-object responses). Without them the
conformance tests are skipped on a developer's machine, saying so, and fail under CI.
"""

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from app.config import PROJECT_ROOT

STANDARDS_DIR = Path(
    os.environ.get("CASE_STANDARDS_DIR", PROJECT_ROOT.parent / "shared" / "standards" / "case-1.1")
)
PACKAGE_SCHEMA = "case_v1p1_cfpackage-jsonschema1.json"
OPENAPI = "imscasev1p1_openapi3_v1p0.json"


# RFC 3339 date-time; jsonschema checks "date-time" only with an optional package installed.
DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


@cache
def _load(name: str) -> dict[str, Any]:
    path = STANDARDS_DIR / name
    if not path.is_file():
        message = f"the official CASE 1.1 file {path} is missing (set CASE_STANDARDS_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def package_schema() -> dict[str, Any]:
    """The official CFPackage JSON Schema."""
    return _load(PACKAGE_SCHEMA)


def _errors(schema: dict[str, Any], data: Any) -> list[str]:
    cls = jsonschema.validators.validator_for(schema)
    formats = jsonschema.FormatChecker(())
    formats.checkers = dict(cls.FORMAT_CHECKER.checkers)
    if "date-time" not in formats.checkers:
        formats.checks("date-time")(
            lambda v: not isinstance(v, str) or bool(DATE_TIME.fullmatch(v))
        )
    validator = cls(schema, format_checker=formats)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


def package_errors(package: Any) -> list[str]:
    """Every way ``package`` breaks the official CFPackage schema (format checks on)."""
    return _errors(package_schema(), package)


def response_errors(data: Any, dtype: str) -> list[str]:
    """Every way ``data`` breaks a response schema of the official REST binding (e.g. CFItem)."""
    components = _load(OPENAPI)["components"]
    schema = {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$ref": f"#/components/schemas/{dtype}DType",
        "components": components,
    }
    return _errors(schema, data)
