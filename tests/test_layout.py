"""The service in app/ stands alone: development tooling and tests drive it, never the reverse.
And its SQL lives in repositories: services hold the rules, repositories the statements."""

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


# Statement builders of SQLAlchemy and SQLModel; a call of one builds SQL.
BUILDERS = {"select", "insert", "update", "delete", "text"}
# Modules outside repositories that may build statements, and why.
STORAGE_OF_THEIR_OWN = {
    "app/db.py": "the unit of work binds each transaction to its tenant",
    "app/health.py": "the readiness probe's SELECT 1",
    "app/etags.py": "the compare-and-swap of a revision that every update of every table shares",
    "app/idempotency.py": "the idempotency layer's own table and its transaction lock",
}


def statements_built(source: str) -> list[str]:
    """``line: builder`` of every call that builds a SQL statement in a module."""
    tree = ast.parse(source)
    modules: set[str] = set()  # names bound to sqlalchemy or sqlmodel themselves
    builders: dict[str, str] = {}  # local name -> builder imported from them
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("sqlalchemy", "sqlmodel"):
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] in ("sqlalchemy", "sqlmodel")
        ):
            for alias in node.names:
                if alias.name in BUILDERS:
                    builders[alias.asname or alias.name] = alias.name
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in builders:
            found.append((node.lineno, builders[f.id]))
        elif (
            isinstance(f, ast.Attribute)
            and f.attr in BUILDERS
            and isinstance(f.value, ast.Name)
            and f.value.id in modules
        ):
            found.append((node.lineno, f.attr))
    return [f"{line}: {builder}" for line, builder in sorted(found)]


def test_sql_is_built_only_in_repositories() -> None:
    found = []
    for path in sorted((PROJECT_ROOT / "app").rglob("*.py")):
        where = path.relative_to(PROJECT_ROOT).as_posix()
        if path.name.endswith("repository.py") or where in STORAGE_OF_THEIR_OWN:
            continue
        found += [f"{where}:{hit}" for hit in statements_built(path.read_text())]
    assert found == []


def test_the_sql_check_sees_every_way_of_building_a_statement() -> None:
    source = (
        "import sqlalchemy as sa\n"
        "from sqlmodel import select, col\n"
        "from sqlalchemy import delete as remove\n"
        "def f(h):\n"
        "    sa.select(1)\n"
        "    select(T).where(col(T.a) == 1)\n"
        "    remove(T)\n"
        "    sa.text('SELECT 1')\n"
        "    h.update(b'x')\n"  # a hash's update builds no SQL
    )
    assert statements_built(source) == ["5: select", "6: select", "7: delete", "8: text"]


# The formats the API takes in many places, each by the start of its character classes, and the
# one module that writes it: the rest use its constant, so the format cannot drift apart.
FORMATS = {
    r"[a-z0-9][a-z0-9_": "app/schemas.py",  # a framework, level, track or competency key
    r"[A-Za-z0-9][A-Za-z0-9_.": "app/subjects/schemas.py",  # a subject's attribute name
}


def formats_written(source: str) -> list[str]:
    """(line, format) of every string constant in a module that writes one of FORMATS."""
    return [
        f"{node.lineno}: {start}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        for start in FORMATS
        if start in node.value
    ]


def test_each_format_is_written_in_one_module() -> None:
    found = []
    for path in sorted((PROJECT_ROOT / "app").rglob("*.py")):
        where = path.relative_to(PROJECT_ROOT).as_posix()
        found += [
            f"{where}:{hit}"
            for hit in formats_written(path.read_text())
            if FORMATS[hit.split(": ", 1)[1]] != where
        ]
    assert found == []


def test_the_format_check_sees_every_string() -> None:
    source = (
        'K = r"^[a-z0-9][a-z0-9_\\-]*$"\ndef f(p=rf"^[A-Za-z0-9][A-Za-z0-9_.\\-]*:{x}$"): ...\n'
    )
    assert formats_written(source) == ["1: [a-z0-9][a-z0-9_", "2: [A-Za-z0-9][A-Za-z0-9_."]
