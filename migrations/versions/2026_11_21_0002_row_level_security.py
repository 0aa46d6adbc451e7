"""Row-level security on Postgres: a second wall behind the application's tenant filters.

Every tenant-owned table only shows the rows of the tenant named by the transaction-local
setting ``app.tenant_id``. Built-in frameworks (the system tenant) are readable by all.
API keys are readable by id before the tenant is known (authentication needs that), but only
the owning tenant can change them. The tables are FORCEd so even their owner is filtered;
only superusers and BYPASSRLS roles are not, and the application must use neither.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 21:10:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
SYSTEM = "'00000000-0000-0000-0000-000000000000'::uuid"

PRIVATE_TABLES = ("subject", "assessment", "rating", "completed_activity", "audit_event")
TEMPLATE_TABLES = ("framework", "framework_version")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*PRIVATE_TABLES, *TEMPLATE_TABLES, "api_key"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    for table in PRIVATE_TABLES:
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {CURRENT}) WITH CHECK (tenant_id = {CURRENT})"
        )
    for table in TEMPLATE_TABLES:
        op.execute(
            f"CREATE POLICY tenant_read ON {table} FOR SELECT "
            f"USING (tenant_id = {CURRENT} OR tenant_id = {SYSTEM})"
        )
        for action, clause in (
            ("INSERT", f"WITH CHECK (tenant_id = {CURRENT})"),
            ("UPDATE", f"USING (tenant_id = {CURRENT}) WITH CHECK (tenant_id = {CURRENT})"),
            ("DELETE", f"USING (tenant_id = {CURRENT})"),
        ):
            op.execute(f"CREATE POLICY tenant_{action.lower()} ON {table} FOR {action} {clause}")
    op.execute("CREATE POLICY key_lookup ON api_key FOR SELECT USING (true)")
    for action, clause in (
        ("INSERT", f"WITH CHECK (tenant_id = {CURRENT})"),
        ("UPDATE", f"USING (tenant_id = {CURRENT}) WITH CHECK (tenant_id = {CURRENT})"),
        ("DELETE", f"USING (tenant_id = {CURRENT})"),
    ):
        op.execute(f"CREATE POLICY tenant_{action.lower()} ON api_key FOR {action} {clause}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in PRIVATE_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    for table in (*TEMPLATE_TABLES, "api_key"):
        for name in (
            "tenant_read",
            "key_lookup",
            "tenant_insert",
            "tenant_update",
            "tenant_delete",
        ):
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
    for table in (*PRIVATE_TABLES, *TEMPLATE_TABLES, "api_key"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
