"""Learning records (issue 20): xAPI statements in, completed activities with their provenance.

``learning_record_settings`` holds the account homePages a tenant maps actors by,
``learning_record_agent`` the registered mailboxes (as SHA-1 only), ``xapi_statement`` every
statement id received (content only when it maps to a person, going with them on erasure) and
``xapi_unmapped`` the bounded report of what could not be mapped. ``completed_activity`` gains
the id of the statement that recorded it. Every new table has row-level security like the other
tenant tables (migration 0002).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
TABLES = ("learning_record_settings", "learning_record_agent", "xapi_statement", "xapi_unmapped")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("completed_activity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("statement_id", sa.Uuid(), nullable=True))
    op.create_table(
        "learning_record_settings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("account_home_pages", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_learning_record_settings_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_learning_record_settings")),
    )
    op.create_table(
        "learning_record_agent",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("mbox_sha1sum", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subject.tenant_id", "subject.id"],
            name=op.f("fk_learning_record_agent_tenant_id_subject_id_subject"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "mbox_sha1sum", name=op.f("pk_learning_record_agent")),
    )
    op.create_index(
        op.f("ix_learning_record_agent_tenant_id_subject_id"),
        "learning_record_agent",
        ["tenant_id", "subject_id"],
    )
    op.create_table(
        "xapi_statement",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("verb", sa.String(length=2000), nullable=False),
        sa.Column("voids", sa.Uuid(), nullable=True),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("content", JSON, nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subject.tenant_id", "subject.id"],
            name=op.f("fk_xapi_statement_tenant_id_subject_id_subject"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_xapi_statement")),
    )
    op.create_index(
        op.f("ix_xapi_statement_tenant_id_subject_id"),
        "xapi_statement",
        ["tenant_id", "subject_id"],
    )
    op.create_table(
        "xapi_unmapped",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=True),
        sa.Column("actor_id", sa.String(length=2000), nullable=True),
        sa.Column("actor_mbox_sha1sum", sa.String(length=40), nullable=True),
        sa.Column("activity_iri", sa.String(length=2000), nullable=True),
        sa.Column("statements", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('unknown_actor', 'unknown_activity')", name=op.f("ck_xapi_unmapped_reason")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_xapi_unmapped_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_xapi_unmapped")),
    )
    op.create_index(
        op.f("ix_xapi_unmapped_tenant_id_last_seen_at"),
        "xapi_unmapped",
        ["tenant_id", "last_seen_at"],
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {CURRENT}) WITH CHECK (tenant_id = {CURRENT})"
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_xapi_unmapped_tenant_id_last_seen_at"), table_name="xapi_unmapped")
    op.drop_table("xapi_unmapped")
    op.drop_index(op.f("ix_xapi_statement_tenant_id_subject_id"), table_name="xapi_statement")
    op.drop_table("xapi_statement")
    op.drop_index(
        op.f("ix_learning_record_agent_tenant_id_subject_id"), table_name="learning_record_agent"
    )
    op.drop_table("learning_record_agent")
    op.drop_table("learning_record_settings")
    with op.batch_alter_table("completed_activity", schema=None) as batch_op:
        batch_op.drop_column("statement_id")
