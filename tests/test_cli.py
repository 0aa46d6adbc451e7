"""The `ladder` command: offline scoring, framework import/export, tenants and keys, OpenAPI."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from app.cli import main
from app.config import PROJECT_ROOT, get_settings
from app.frameworks.document import dump_document, parse_document

EXAMPLE = PROJECT_ROOT / "examples" / "ratings.csv"


def ladder(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command in a child process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.fixture
def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """Run `ladder` in this process (much faster than a child) with its own environment."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        finally:
            get_settings.cache_clear()
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_score_a_ratings_file_offline() -> None:
    done = ladder(
        "score",
        str(EXAMPLE),
        "--as-of",
        "2026-11-01T00:00:00+00:00",
        "--track",
        "management",
        "--format",
        "json",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    rows = {r["subject_ref"]: r for r in json.loads(done.stdout)}
    assert set(rows) == {"ada", "grace", "linus"}
    assert rows["grace"]["attained_level"] == "pm"
    assert rows["grace"]["next_level"] == "senior_pm"
    assert 2 < rows["grace"]["level_index"] < 3
    table = ladder("score", str(EXAMPLE), "--as-of", "2026-11-01T00:00:00+00:00", "--quiet")
    assert table.stdout.splitlines()[0].split() == [
        "subject_ref",
        "attained_level",
        "next_level",
        "level_index",
        "readiness_next",
        "confidence",
        "top_gap",
    ]


def test_score_refuses_a_broken_file(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("subject_ref,competency\nx,execution\n")
    code, _, err = run_cli("score", str(bad), "--quiet")
    assert code != 0
    assert "missing CSV column" in err


def test_tenant_import_export_round_trip(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}
    assert run_cli("migrate", env=env)[0] == 0
    code, out, _ = run_cli("create-tenant", "acme", env=env)
    assert code == 0
    assert out.strip().startswith("cl_")
    source = PROJECT_ROOT / "app" / "frameworks" / "builtin" / "product-management.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["key"] = "acme-pm"
    mine = tmp_path / "acme-pm.yaml"
    mine.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, printed, err = run_cli("import", str(mine), "--tenant", "acme", "--publish", env=env)
    assert code == 0, err
    assert "acme-pm version 1 (published)" in printed
    exported = tmp_path / "out.yaml"
    code, _, err = run_cli(
        "export", "acme-pm", "--tenant", "acme", "--output", str(exported), env=env
    )
    assert code == 0, err
    # The export spells out every default; otherwise it is the file that went in.
    assert yaml.safe_load(exported.read_text()) == dump_document(parse_document(doc))
    broken = tmp_path / "broken.yaml"
    doc["competencies"][0]["area"] = "nowhere"
    doc["key"] = "broken"
    broken.write_text(yaml.safe_dump(doc))
    code, _, err = run_cli("import", str(broken), "--tenant", "acme", env=env)
    assert code != 0
    assert "competencies.0.area" in err


@pytest.mark.parametrize("flag", [[], ["--output", "OUT"]])
def test_openapi_is_printed(
    tmp_path: Path, flag: list[str], run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    args = [str(tmp_path / "o.json") if a == "OUT" else a for a in flag]
    code, out, _ = run_cli("openapi", *args)
    assert code == 0
    text = (tmp_path / "o.json").read_text() if args else out
    assert json.loads(text)["info"]["title"] == "Competency Ladder"


def test_case_export_and_import_round_trip(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/case.db"}
    assert run_cli("migrate", env=env)[0] == 0
    assert run_cli("create-tenant", "acme", env=env)[0] == 0
    package_file = tmp_path / "pm.case.json"
    code, _, err = run_cli(
        "export",
        "product-management",
        "--tenant",
        "acme",
        "--format",
        "case",
        "--output",
        str(package_file),
        env=env,
    )
    assert code == 0, err
    package = json.loads(package_file.read_text())
    assert package["CFDocument"]["title"] == "Product Management Career Ladder"
    code, printed, err = run_cli(
        "import",
        str(package_file),
        "--case",
        "--key",
        "acme-pm",
        "--tenant",
        "acme",
        "--publish",
        env=env,
    )
    assert code == 0, err
    assert "acme-pm version 1 (published)" in printed
    native = tmp_path / "acme.json"
    original = tmp_path / "original.json"
    assert (
        run_cli(
            "export",
            "acme-pm",
            "--tenant",
            "acme",
            "--format",
            "json",
            "--output",
            str(native),
            env=env,
        )[0]
        == 0
    )
    assert (
        run_cli(
            "export",
            "product-management",
            "--tenant",
            "acme",
            "--format",
            "json",
            "--output",
            str(original),
            env=env,
        )[0]
        == 0
    )
    mine, theirs = json.loads(native.read_text()), json.loads(original.read_text())
    assert {**mine, "key": "x"} == {**theirs, "key": "x"}


def test_case_import_with_invalid_unicode_is_refused_without_a_traceback(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bad-case.db"}
    assert run_cli("migrate", env=env)[0] == 0
    assert run_cli("create-tenant", "acme", env=env)[0] == 0
    package_file = tmp_path / "pm.case.json"
    export = ("export", "product-management", "--tenant", "acme", "--format", "case")
    assert run_cli(*export, "--output", str(package_file), env=env)[0] == 0
    package = json.loads(package_file.read_text())
    package["CFDocument"]["notes"] = "kept nowhere \udfff"
    package_file.write_text(json.dumps(package))  # ASCII: the surrogate as a JSON escape
    imported = ("import", str(package_file), "--case", "--key", "acme-pm", "--tenant", "acme")
    code, printed, err = run_cli(*imported, env=env)
    assert code != 0
    assert "Traceback" not in err
    assert "CFDocument.notes" in err
    assert "not valid Unicode" in err
    del package["CFDocument"]["notes"]
    package_file.write_text(json.dumps(package))
    code, printed, err = run_cli(*imported, env=env)
    assert code == 0, err
    assert "acme-pm version 1 (draft)" in printed  # the refused import stored nothing
