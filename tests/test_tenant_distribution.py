"""Ready for a tenant-distributed Postgres (e.g. Citus), checked on the migrated schema and the SQL.

Distributing a table by ``tenant_id`` needs its primary key and unique constraints to contain the
distribution column, and a foreign key between two distributed tables to join them on it, so a
tenant's rows and the rows they reference live on the same node. Here the rule is the stricter
one the README promises: every key of a tenant-owned table *leads* with ``tenant_id`` (it is also
what makes each tenant's lookups one index range). A tenant-owned table is one with a
``tenant_id`` column; the tables that stay whole on every node or on one node are listed below
with the reason, and so are the catalog tables every tenant reads.

The second half reads the SQL in ``app/``: every join names ``tenant_id`` in its condition, so no
query path joins one tenant's rows to another's (a join into the catalog names the owner tenant,
``framework_tenant_id``, the system tenant's id or the caller's). Joins that SQLAlchemy infers
from a foreign key need no condition: the foreign keys are composite, checked by the first half.
"""

import ast
import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table)
from app.config import PROJECT_ROOT, Settings
from app.db import create_engine
from tests.conftest import make_postgres_database
from tests.test_migrations import _config

# Tables without tenant distribution, and why.
GLOBAL_TABLES = {
    "alembic_version": "Alembic's bookkeeping",
    "tenant": "the tenants themselves: a reference table, copied to every node",
    "api_key": "a request's key is found by its id before its tenant is known (UNIQUE (id)); "
    "few rows, rarely written: a reference table",
    "webhook_queue": "the dispatcher's work index across tenants (ids and due times, no "
    "tenant data), claimed with FOR UPDATE SKIP LOCKED: stays whole on one node",
}
# Tenant-owned, but read by every tenant: the built-in ladders are the system tenant's rows, and
# any tenant's assessments reference them. Few rows, written when a ladder is edited, so they are
# reference tables; their keys still lead with tenant_id (row-level security, a tenant's lookups).
CATALOG_TABLES = {"framework", "framework_version", "case_identifier"}
# The references that may cross tenants: an assessment (and a calibration session, and a recorded
# rater-effect estimate) names its version's owner, which is the system tenant for a built-in
# ladder (and must be a catalog table).
OWNER_COLUMNS = {
    ("assessment", "framework_tenant_id"),
    ("calibration_session", "framework_tenant_id"),
    ("rater_effect_estimate", "framework_tenant_id"),
}

CATALOG_QUERY = """
SELECT c.relname AS table_name, con.contype::text AS kind, con.conname AS name,
       array(SELECT a.attname::text
               FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
              ORDER BY k.n) AS columns,
       fc.relname AS referenced,
       array(SELECT a.attname::text
               FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
              ORDER BY k.n) AS referenced_columns
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace ns ON ns.oid = c.relnamespace AND ns.nspname = 'public'
  LEFT JOIN pg_class fc ON fc.oid = con.confrelid
 WHERE con.contype IN ('p', 'u', 'f')
UNION ALL
SELECT t.relname, CASE WHEN x.indisunique THEN 'u' ELSE 'i' END, i.relname,
       array(SELECT coalesce(a.attname::text, pg_get_indexdef(x.indexrelid, k.n::int, true))
               FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
               LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
              ORDER BY k.n),
       NULL, ARRAY[]::text[]
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace ns ON ns.oid = t.relnamespace AND ns.nspname = 'public'
 WHERE NOT EXISTS (SELECT FROM pg_constraint con WHERE con.conindid = x.indexrelid)
"""


@dataclass(frozen=True)
class Key:
    """A primary key, unique constraint or index ('p', 'u', 'i'), or a foreign key ('f')."""

    table: str
    kind: str
    name: str
    columns: tuple[str, ...]
    referenced: str | None = None
    referenced_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    tables: dict[str, set[str]]  # table -> its columns
    keys: list[Key]


def read_schema(url: str) -> Schema:
    """The tables, columns and keys of the migrated database, from pg_catalog."""

    async def go() -> Schema:
        engine = create_engine(Settings(), url)
        try:
            async with engine.connect() as conn:
                columns = await conn.execute(
                    text(
                        "SELECT c.relname, a.attname FROM pg_attribute a"
                        " JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')"
                        " JOIN pg_namespace ns ON ns.oid = c.relnamespace"
                        " AND ns.nspname = 'public'"
                        " WHERE a.attnum > 0 AND NOT a.attisdropped"
                    )
                )
                tables: dict[str, set[str]] = {}
                for table, column in columns:
                    tables.setdefault(table, set()).add(column)
                rows = (await conn.execute(text(CATALOG_QUERY))).mappings().all()
        finally:
            await engine.dispose()
        keys = [
            Key(
                row["table_name"],
                row["kind"],
                row["name"],
                tuple(row["columns"]),
                row["referenced"],
                tuple(row["referenced_columns"]),
            )
            for row in rows
        ]
        return Schema(tables, keys)

    return asyncio.run(go())


def distribution_problems(schema: Schema) -> list[str]:
    """Every key that would keep the tenant-owned tables from being distributed by tenant_id."""
    owned = {t for t, cols in schema.tables.items() if "tenant_id" in cols} - set(GLOBAL_TABLES)
    problems = [
        f"{t}: no tenant_id column and not listed as a global table"
        for t in sorted(set(schema.tables) - owned - set(GLOBAL_TABLES))
    ]
    for key in schema.keys:
        if key.table not in owned:
            continue
        where = f"{key.table}.{key.name} ({', '.join(key.columns)})"
        if key.kind != "f":
            if key.columns[:1] != ("tenant_id",):
                problems.append(f"{where} does not lead with tenant_id")
            continue
        target = f"{key.referenced} ({', '.join(key.referenced_columns)})"
        if key.referenced in GLOBAL_TABLES:
            if key.columns != ("tenant_id",) or key.referenced != "tenant":
                problems.append(f"{where} references the global table {target}")
        elif key.referenced_columns[:1] != ("tenant_id",):
            problems.append(f"{where} references {target}, which does not lead with tenant_id")
        elif key.columns[:1] == ("tenant_id",):
            if key.table in CATALOG_TABLES and key.referenced not in CATALOG_TABLES:
                problems.append(f"{where}: a catalog table references the tenant table {target}")
        elif (key.table, key.columns[0]) not in OWNER_COLUMNS:
            problems.append(f"{where} references {target} across tenants")
        elif key.referenced not in CATALOG_TABLES:
            problems.append(f"{where} names an owner tenant of {target}, not a catalog table")
    return problems


@pytest.fixture(scope="module")
def schema() -> Iterator[Schema]:
    _, url, drop = make_postgres_database()
    try:
        command.upgrade(_config(url), "head")
        yield read_schema(url)
    finally:
        drop()


@pytest.mark.postgres
def test_every_key_of_a_tenant_owned_table_leads_with_tenant_id(schema: Schema) -> None:
    assert distribution_problems(schema) == []


@pytest.mark.postgres
def test_the_listed_exceptions_are_real_tables(schema: Schema) -> None:
    # A list that outlives its tables would exempt the next table of the same name unseen.
    assert set(GLOBAL_TABLES) | CATALOG_TABLES <= set(schema.tables)
    assert {t for t, _ in OWNER_COLUMNS} <= set(schema.tables)
    for table, column in OWNER_COLUMNS:
        assert column in schema.tables[table], (table, column)


def test_the_key_check_finds_keys_that_do_not_lead_with_tenant_id() -> None:
    tables = {
        "tenant": {"id"},
        "subject": {"tenant_id", "id", "external_ref"},
        "note": {"tenant_id", "id", "subject_id"},
        "framework_version": {"tenant_id", "id"},
        "audit": {"id"},
    }
    keys = [
        Key("subject", "p", "pk_subject", ("tenant_id", "id")),
        Key("subject", "u", "uq_subject_external_ref", ("external_ref",)),
        Key("note", "p", "pk_note", ("id",)),
        Key("note", "f", "fk_note_subject", ("subject_id",), "subject", ("id",)),
        Key("note", "i", "ix_note_subject", ("subject_id", "tenant_id")),
        Key("subject", "f", "fk_subject_tenant", ("tenant_id",), "tenant", ("id",)),
        Key("note", "f", "fk_note_owner", ("owner_id", "id"), "subject", ("tenant_id", "id")),
        Key(
            "framework_version",
            "f",
            "fk_version_subject",
            ("tenant_id", "id"),
            "subject",
            ("tenant_id", "id"),
        ),
    ]
    found = distribution_problems(Schema(tables, keys))
    assert found == [
        "audit: no tenant_id column and not listed as a global table",
        "subject.uq_subject_external_ref (external_ref) does not lead with tenant_id",
        "note.pk_note (id) does not lead with tenant_id",
        "note.fk_note_subject (subject_id) references subject (id), which does not lead with "
        "tenant_id",
        "note.ix_note_subject (subject_id, tenant_id) does not lead with tenant_id",
        "note.fk_note_owner (owner_id, id) references subject (tenant_id, id) across tenants",
        "framework_version.fk_version_subject (tenant_id, id): a catalog table references the "
        "tenant table subject (tenant_id, id)",
    ]


# --- Joins in app/ ------------------------------------------------------------------------------

SQL_JOIN = re.compile(
    r"\bJOIN\s+(?:LATERAL\s+)?(?P<table>\w+)(?:\s+(?:AS\s+)?(?P<alias>(?!ON\b)\w+))?\s+ON\b"
    r"(?P<condition>.*?)(?=\bJOIN\b|\bWHERE\b|\bORDER\b|\bGROUP\b|\bLIMIT\b|\)\s*(?:,|$)|\Z)",
    re.S,
)
JOIN_METHODS = {"join", "outerjoin"}


def _tenant_tables() -> set[str]:
    return {t.name for t in SQLModel.metadata.sorted_tables if "tenant_id" in t.c}


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of each string literal; an f-string whole, its placeholders as ``{}``."""
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield (
                node.lineno,
                "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values),
            )
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts
        ):
            yield node.lineno, node.value


def _derived_tables(tree: ast.AST) -> set[str]:
    """Names bound to a CTE or subquery: rows already selected (and filtered) elsewhere."""
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr in {"cte", "subquery"}
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def join_problems(source: str, where: str, tenant_tables: set[str]) -> tuple[int, list[str]]:
    """How many joins one module has that could pair tenants' rows, and those that may.

    Raw SQL: a JOIN of a tenant-owned table whose ON condition does not name its tenant_id.
    SQLAlchemy: a ``join``/``outerjoin`` with an explicit condition that names no tenant_id,
    unless it joins a CTE or subquery (its own query is checked where it is built).
    """
    tree = ast.parse(source)
    derived = _derived_tables(tree)
    checked, problems = 0, []
    for line, sql in _strings(tree):
        for match in SQL_JOIN.finditer(sql):
            alias = match["alias"] or match["table"]
            checked += match["table"] in tenant_tables
            if match["table"] in tenant_tables and f"{alias}.tenant_id" not in match["condition"]:
                problems.append(
                    f"{where}:{line}: JOIN {match['table']} {alias} without {alias}.tenant_id"
                )
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in JOIN_METHODS
        ):
            onclause = node.args[1] if len(node.args) > 1 else None
            onclause = next((k.value for k in node.keywords if k.arg == "onclause"), onclause)
            target = node.args[0] if node.args else None
            if onclause is None or (isinstance(target, ast.Name) and target.id in derived):
                continue
            checked += 1
            if "tenant_id" not in ast.unparse(onclause):
                problems.append(f"{where}:{node.lineno}: .{node.func.attr}() without tenant_id")
    return checked, problems


def app_modules() -> Iterator[tuple[str, str]]:
    for path in sorted((PROJECT_ROOT / "app").rglob("*.py")):
        yield path.relative_to(PROJECT_ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_every_join_in_app_names_tenant_id() -> None:
    tenant_tables = _tenant_tables()
    joins, problems = 0, list[str]()
    for where, source in app_modules():
        checked, found = join_problems(source, where, tenant_tables)
        joins, problems = joins + checked, problems + found
    assert joins > 10, "the scan found almost no joins: is it still reading the SQL?"
    assert problems == []


def test_the_join_check_finds_joins_without_tenant_id() -> None:
    source = '''
Q = """
SELECT * FROM subject s
  JOIN assessment a ON a.subject_id = s.id
  JOIN rating r ON r.tenant_id = a.tenant_id AND r.assessment_id = a.id
  LEFT JOIN framework_version AS fv ON fv.id = a.framework_version_id
 WHERE s.tenant_id = $1
"""
F = f"SELECT * FROM subject s JOIN completed_activity c ON c.subject_id = s.id AND {x}"
stmt = select(Assessment).join(Rating, Rating.assessment_id == Assessment.id)
ok = select(Assessment).join(Subject)  # inferred from the composite foreign key
latest = select(Assessment).where(Assessment.tenant_id == t).cte("latest")
ok = select(Subject).outerjoin(latest, sa.true())  # a CTE: checked where it is built
names = ", ".join(["a", "b"])
'''
    checked, found = join_problems(
        source,
        "m.py",
        {"subject", "assessment", "rating", "framework_version", "completed_activity"},
    )
    assert found == [
        "m.py:2: JOIN assessment a without a.tenant_id",
        "m.py:2: JOIN framework_version fv without fv.tenant_id",
        "m.py:9: JOIN completed_activity c without c.tenant_id",
        "m.py:10: .join() without tenant_id",
    ]
    assert checked == 5  # the inferred join and the CTE are not counted
