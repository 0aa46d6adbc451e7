"""The committed OpenAPI document as integrators' tools read it: two linters and TypeScript.

Spectral (`spectral:oas`) and Redocly (`recommended`) run with the rulesets committed beside
this file (each rule turned off says why) and must report nothing; openapi-typescript's types
must compile with `tsc --strict` in a small program that reads a score and a problem. The tools
are pinned in `tests/contract/node/package-lock.json` and installed by `make test` when npm is
on the machine (`.ci/run` installs Node); without them these tests skip locally and fail in CI.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

NODE_DIR = PROJECT_ROOT / "tests" / "contract" / "node"
BIN = NODE_DIR / "node_modules" / ".bin"
OPENAPI_FILE = PROJECT_ROOT / "openapi" / "openapi.json"


@pytest.fixture(scope="module")
def tools() -> Path:
    if not (BIN / "tsc").exists():
        message = "npm ci --prefix tests/contract/node has not run (needs Node.js and npm)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must install the contract tools: {message}")
        pytest.skip(message)
    return BIN


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1", "REDOCLY_TELEMETRY": "off"},
        check=False,
    )


def test_spectral_finds_nothing(tools: Path) -> None:
    proc = _run(
        [
            str(tools / "spectral"),
            "lint",
            str(OPENAPI_FILE),
            "--ruleset",
            str(NODE_DIR / ".spectral.yaml"),
            "--format",
            "json",
            "--fail-severity",
            "hint",
        ],
        NODE_DIR,
    )
    # The JSON list, then (when it is empty) a sentence saying so.
    findings, _ = json.JSONDecoder().raw_decode(proc.stdout, proc.stdout.index("["))
    assert findings == [], json.dumps(findings, indent=1)[:4000]
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_redocly_finds_nothing(tools: Path) -> None:
    proc = _run(
        [
            str(tools / "redocly"),
            "lint",
            str(OPENAPI_FILE),
            "--config",
            str(NODE_DIR / "redocly.yaml"),
            "--format",
            "json",
        ],
        NODE_DIR,
    )
    start = proc.stdout.find("{")
    assert start >= 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout[start:])
    assert report["totals"]["errors"] == 0, json.dumps(report["problems"], indent=1)[:4000]
    assert report["totals"]["warnings"] == 0, json.dumps(report["problems"], indent=1)[:4000]
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_typescript_types_compile_strictly(tools: Path, tmp_path: Path) -> None:
    for name in ("integration.ts", "tsconfig.json"):
        shutil.copy(NODE_DIR / name, tmp_path / name)
    generated = _run(
        [str(tools / "openapi-typescript"), str(OPENAPI_FILE), "-o", str(tmp_path / "schema.d.ts")],
        NODE_DIR,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    compiled = _run([str(tools / "tsc"), "-p", str(tmp_path / "tsconfig.json")], tmp_path)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
