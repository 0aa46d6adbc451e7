"""Calibration sessions (issue 17): a snapshot of a cohort, proposals, and their close.

``calibration_session`` holds a session's shared snapshot (the rater-effects answer without
per-person parts) and whether it closed; ``calibration_member`` each person's score in the
snapshot and ``calibration_proposal`` the adjustments proposed, both going with the person on
erasure (cascading from ``subject``). Row-level security like the other tenant tables
(migration 0002).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
TABLES = ("calibration_session", "calibration_member", "calibration_proposal")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "calibration_session",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("framework_tenant_id", sa.Uuid(), nullable=False),
        sa.Column("framework_version_id", sa.Uuid(), nullable=False),
        sa.Column("framework_key", sa.String(length=64), nullable=False),
        sa.Column("framework_version", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("scope", JSON, nullable=False),
        sa.Column("rater_effects", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("calibrated_ratings", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'closed')", name=op.f("ck_calibration_session_status")
        ),
        sa.ForeignKeyConstraint(
            ["framework_tenant_id", "framework_version_id"],
            ["framework_version.tenant_id", "framework_version.id"],
            name=op.f(
                "fk_calibration_session_framework_tenant_id_framework_version_id_framework_version"
            ),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_calibration_session_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_calibration_session")),
    )
    op.create_index(
        op.f("ix_calibration_session_tenant_id_created_at"),
        "calibration_session",
        ["tenant_id", "created_at"],
    )
    op.create_table(
        "calibration_member",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("subject_ref", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("attained_level", sa.String(length=64), nullable=True),
        sa.Column("next_level", sa.String(length=64), nullable=True),
        sa.Column("level_index", sa.Float(), nullable=False),
        sa.Column("readiness", JSON, nullable=False),
        sa.Column("values", JSON, nullable=False),
        sa.Column("fair_values", JSON, nullable=False),
        sa.Column("fair_level_index", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"],
            ["calibration_session.tenant_id", "calibration_session.id"],
            name=op.f("fk_calibration_member_tenant_id_session_id_calibration_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subject.tenant_id", "subject.id"],
            name=op.f("fk_calibration_member_tenant_id_subject_id_subject"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "session_id", "subject_id", name=op.f("pk_calibration_member")
        ),
    )
    op.create_index(
        op.f("ix_calibration_member_tenant_id_subject_id"),
        "calibration_member",
        ["tenant_id", "subject_id"],
    )
    op.create_table(
        "calibration_proposal",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("competency_key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=4000), nullable=False),
        sa.Column("proposer", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id", "subject_id"],
            [
                "calibration_member.tenant_id",
                "calibration_member.session_id",
                "calibration_member.subject_id",
            ],
            name=op.f("fk_calibration_proposal_tenant_id_session_id_subject_id_calibration_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "session_id",
            "subject_id",
            "competency_key",
            name=op.f("pk_calibration_proposal"),
        ),
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
    op.drop_table("calibration_proposal")
    op.drop_index(
        op.f("ix_calibration_member_tenant_id_subject_id"), table_name="calibration_member"
    )
    op.drop_table("calibration_member")
    op.drop_index(
        op.f("ix_calibration_session_tenant_id_created_at"), table_name="calibration_session"
    )
    op.drop_table("calibration_session")
