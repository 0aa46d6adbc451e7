"""Shared rate-limit buckets: one row per API key that every worker and replica leases from.

On Postgres the table is UNLOGGED: each lease updates a row, and writing WAL (and shipping it
to replicas) for counters that are worthless after a crash would cost more than the requests
they limit. After a crash or a failover the table is empty, which refills every key's bucket
once. It has no row-level security (ids, numbers and a time only; see the model).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 08:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_bucket",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key_id", name=op.f("pk_rate_limit_bucket")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_limit_bucket SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("rate_limit_bucket")
