"""The scoring package stays pure: standard library only, no web, ORM or database module."""

import ast
import subprocess
import sys
from pathlib import Path

import app.scoring

FORBIDDEN = ("fastapi", "sqlmodel", "sqlalchemy", "pydantic", "starlette", "asyncpg", "aiosqlite")
PACKAGE_DIR = Path(app.scoring.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.add(node.module)
    return modules


# The cohort path is the one module allowed a numeric library; nothing web or database.
ALLOWED = {"cohort.py": {"numpy"}, "carry.py": {"numpy"}, "calibration.py": {"numpy"}}


def test_sources_import_only_stdlib_and_the_package_itself() -> None:
    sources = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(sources) >= 8
    for path in sources:
        for module in _imported_modules(path):
            top = module.split(".")[0]
            allowed = top in sys.stdlib_module_names or top in ALLOWED.get(path.name, set())
            assert allowed or module.startswith("app.scoring"), f"{path.name} imports {module}"


def test_importing_the_package_loads_no_framework_module() -> None:
    probe = (
        "import sys, app.scoring\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(loaded))\n"
    )
    # A fresh interpreter: this test process has already imported the app's test harness.
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
