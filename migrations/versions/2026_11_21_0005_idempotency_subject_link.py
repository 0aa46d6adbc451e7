"""Tie stored idempotent responses to the subject they describe, so erasure removes them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 22:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_idempotency_record_tenant_id_subject_id_subject"),
            "subject",
            ["tenant_id", "subject_id"],
            ["tenant_id", "id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(
            batch_op.f("ix_idempotency_record_tenant_id_subject_id"),
            ["tenant_id", "subject_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_record_tenant_id_subject_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_idempotency_record_tenant_id_subject_id_subject"), type_="foreignkey"
        )
        batch_op.drop_column("subject_id")
