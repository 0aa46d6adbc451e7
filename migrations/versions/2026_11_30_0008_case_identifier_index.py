"""Index every CASE identifier, so a CASE lookup reads one row instead of every framework.

``case_identifier`` maps each identifier of a framework version (its CFDocument and CFItems) to
the version. Like the framework tables it has row-level security: a tenant reads its own rows
and the built-in ones, and writes only its own. Existing versions are indexed here, tenant by
tenant (the transaction names each tenant in turn, so row-level security lets the migrating role
see and write that tenant's rows), with the identifiers ``app.interop.case`` derives; they never
change.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 06:00:00+00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.interop.case import CaseIds, identifiers

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
SYSTEM = "'00000000-0000-0000-0000-000000000000'::uuid"
SYSTEM_TENANT_ID = uuid.UUID(int=0)
BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "case_identifier",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("identifier", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "kind IN ('CFDocument', 'CFItem')", name=op.f("ck_case_identifier_kind")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "version_id"],
            ["framework_version.tenant_id", "framework_version.id"],
            name=op.f("fk_case_identifier_tenant_id_version_id_framework_version"),
            ondelete="CASCADE",
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "identifier", name=op.f("pk_case_identifier")),
    )
    with op.batch_alter_table("case_identifier", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_identifier_tenant_id_version_id"),
            ["tenant_id", "version_id"],
            unique=False,
        )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE case_identifier ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE case_identifier FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY tenant_read ON case_identifier FOR SELECT "
            f"USING (tenant_id = {CURRENT} OR tenant_id = {SYSTEM})"
        )
        for action, clause in (
            ("INSERT", f"WITH CHECK (tenant_id = {CURRENT})"),
            ("UPDATE", f"USING (tenant_id = {CURRENT}) WITH CHECK (tenant_id = {CURRENT})"),
            ("DELETE", f"USING (tenant_id = {CURRENT})"),
        ):
            op.execute(
                f"CREATE POLICY tenant_{action.lower()} ON case_identifier FOR {action} {clause}"
            )
    _backfill(postgres)


def _backfill(postgres: bool) -> None:
    conn = op.get_bind()
    tenant = sa.table("tenant", sa.column("id", sa.Uuid()))
    framework = sa.table(
        "framework", sa.column("tenant_id", sa.Uuid()), sa.column("id", sa.Uuid()), sa.column("key")
    )
    version = sa.table(
        "framework_version",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        sa.column("framework_id", sa.Uuid()),
        sa.column("version", sa.Integer()),
        sa.column("content", sa.JSON()),
    )
    index = sa.table(
        "case_identifier",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("identifier", sa.Uuid()),
        sa.column("version_id", sa.Uuid()),
        sa.column("kind", sa.String()),
    )
    tenants = {SYSTEM_TENANT_ID, *conn.execute(sa.select(tenant.c.id)).scalars()}
    for owner in sorted(tenants, key=str):
        if postgres:
            conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(owner)})
        versions = conn.execute(
            sa.select(framework.c.key, version.c.id, version.c.version, version.c.content)
            .join_from(
                version,
                framework,
                (framework.c.tenant_id == version.c.tenant_id)
                & (framework.c.id == version.c.framework_id),
            )
            .where(version.c.tenant_id == owner)
        )
        rows = [
            {"tenant_id": owner, "identifier": uuid.UUID(ident), "version_id": vid, "kind": kind}
            for key, vid, number, content in versions
            for ident, kind in identifiers(content, CaseIds(owner, key, number)).items()
        ]
        for start in range(0, len(rows), BATCH):
            conn.execute(index.insert(), rows[start : start + BATCH])
    if postgres:
        conn.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    with op.batch_alter_table("case_identifier", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_identifier_tenant_id_version_id"))
    op.drop_table("case_identifier")
