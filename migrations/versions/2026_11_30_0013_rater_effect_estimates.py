"""Recorded rater-effect estimates the score path adjusts by (issue 17).

``rater_effect_estimate`` is one fit an admin recorded for a framework version (the score path
of a framework with ``rater_adjustment`` uses the latest); ``rater_effect_estimate_rater`` holds
its raters (effect, standard error, status, connected group). Both have row-level security like
the other tenant tables (migration 0002).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
TABLES = ("rater_effect_estimate", "rater_effect_estimate_rater")


def upgrade() -> None:
    op.create_table(
        "rater_effect_estimate",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("framework_tenant_id", sa.Uuid(), nullable=False),
        sa.Column("framework_version_id", sa.Uuid(), nullable=False),
        sa.Column("framework_key", sa.String(length=200), nullable=False),
        sa.Column("framework_version", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("sigma", sa.Float(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_rater_effect_estimate_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["framework_tenant_id", "framework_version_id"],
            ["framework_version.tenant_id", "framework_version.id"],
            # The naming convention's name, shortened as SQLAlchemy shortens it (63 characters).
            name=op.f("fk_rater_effect_estimate_framework_tenant_id_framework__1709"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_rater_effect_estimate")),
    )
    op.create_index(
        op.f("ix_rater_effect_estimate_tenant_id_framework_version_id_recorded_at"),
        "rater_effect_estimate",
        ["tenant_id", "framework_version_id", "recorded_at"],
    )
    op.create_table(
        "rater_effect_estimate_rater",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("estimate_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("rater_ref", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("effect", sa.Float(), nullable=True),
        sa.Column("standard_error", sa.Float(), nullable=True),
        sa.Column("group", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('ok', 'insufficient_data', 'not_comparable')",
            name=op.f("ck_rater_effect_estimate_rater_status"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "estimate_id"],
            ["rater_effect_estimate.tenant_id", "rater_effect_estimate.id"],
            name=op.f("fk_rater_effect_estimate_rater_tenant_id_estimate_id_ra_f2dc"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "estimate_id",
            "role",
            "rater_ref",
            name=op.f("pk_rater_effect_estimate_rater"),
        ),
    )
    op.create_index(
        op.f("ix_rater_effect_estimate_rater_tenant_id_rater_ref"),
        "rater_effect_estimate_rater",
        ["tenant_id", "rater_ref"],
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
    op.drop_index(
        op.f("ix_rater_effect_estimate_rater_tenant_id_rater_ref"),
        table_name="rater_effect_estimate_rater",
    )
    op.drop_table("rater_effect_estimate_rater")
    op.drop_index(
        op.f("ix_rater_effect_estimate_tenant_id_framework_version_id_recorded_at"),
        table_name="rater_effect_estimate",
    )
    op.drop_table("rater_effect_estimate")
