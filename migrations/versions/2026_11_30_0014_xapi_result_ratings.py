"""xAPI results as external ratings (issue 20, item 4).

``learning_record_settings.result_ratings`` is a tenant's opt-in (off by default) to turning a
statement's ``result.score.scaled`` into an ``external`` assessment of the competencies the
activity develops; ``assessment.statement_id`` is such an assessment's provenance, indexed so
that voiding the statement removes it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("learning_record_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("result_ratings", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("statement_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_assessment_tenant_id_statement_id"),
            ["tenant_id", "statement_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_tenant_id_statement_id"))
        batch_op.drop_column("statement_id")
    with op.batch_alter_table("learning_record_settings", schema=None) as batch_op:
        batch_op.drop_column("result_ratings")
