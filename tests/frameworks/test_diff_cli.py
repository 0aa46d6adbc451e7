"""`ladder diff` on two framework files."""

import json
from pathlib import Path

import pytest
import yaml

from app.cli import main
from tests.factories import small_framework


def _write(path: Path, doc: dict[str, object]) -> str:
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_ladder_diff_of_two_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = small_framework()
    new = small_framework()
    new["competencies"][1]["expectations"]["mid"] = {"required": 3, "critical": True}
    a, b = _write(tmp_path / "v1.yaml", old), _write(tmp_path / "v2.yaml", new)
    main(["diff", a, b])
    out = capsys.readouterr().out
    assert "Mid now requires Design 3 (was 2)" in out
    assert "Mid: Design is now critical" in out
    main(["diff", a, b, "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert {(c["section"], c["key"], c["level"], c["field"]) for c in data["changes"]} == {
        ("expectations", "design", "mid", "required"),
        ("expectations", "design", "mid", "critical"),
    }


def test_ladder_diff_refuses_an_invalid_file(tmp_path: Path) -> None:
    bad = small_framework(levels=[])
    with pytest.raises(SystemExit, match="ladder diff"):
        main(["diff", _write(tmp_path / "a.yaml", bad), _write(tmp_path / "b.yaml", bad)])
