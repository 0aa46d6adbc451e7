"""The service in app/ stands alone: development tooling and tests drive it, never the reverse."""

import ast
from collections.abc import Iterator

from app.config import PROJECT_ROOT

OUTSIDE = ("tools", "tests", "bench")


def imported_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a module, function-local ones included."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def imports_from_outside(source: str) -> list[str]:
    return [
        f"{line}: {module}"
        for line, module in imported_modules(source)
        if module.split(".")[0] in OUTSIDE
    ]


def test_app_imports_nothing_from_tools_tests_or_bench() -> None:
    found = []
    for path in sorted((PROJECT_ROOT / "app").rglob("*.py")):
        where = path.relative_to(PROJECT_ROOT).as_posix()
        found += [f"{where}:{hit}" for hit in imports_from_outside(path.read_text())]
    assert found == []


def test_the_check_sees_local_imports() -> None:
    # `ladder openapi-examples` imported the recording scenario inside its command function.
    source = "def command():\n    from tools.openapi.scenario import write_examples\n"
    assert imports_from_outside(source) == ["2: tools.openapi.scenario"]
    assert imports_from_outside("import tooling\nfrom app import tools\n") == []
