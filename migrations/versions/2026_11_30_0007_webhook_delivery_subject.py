"""Link each webhook delivery to the person it is about, and let erasure cancel deliveries.

Erasing a subject cancels their pending deliveries and redacts the payloads of all of them; it
finds them by this id (indexed) rather than by searching payloads. Existing deliveries are
linked by the ``subject_ref`` in their payload where the migrating role can see them (row-level
security hides rows from a non-superuser owner; such deliveries stay unlinked).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 05:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS = "ck_webhook_delivery_status"


def upgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_webhook_delivery_tenant_id_subject_id"),
            ["tenant_id", "subject_id"],
            unique=False,
        )
        batch_op.drop_constraint(batch_op.f(STATUS), type_="check")
        batch_op.create_check_constraint(
            batch_op.f(STATUS), "status IN ('pending', 'delivered', 'failed', 'cancelled')"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """UPDATE webhook_delivery d
                  SET subject_id = s.id
                 FROM subject s
                WHERE d.subject_id IS NULL
                  AND s.tenant_id = d.tenant_id
                  AND s.external_ref = d.payload -> 'data' ->> 'subject_ref'"""
        )


def downgrade() -> None:
    op.execute("UPDATE webhook_delivery SET status = 'failed' WHERE status = 'cancelled'")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(STATUS), type_="check")
        batch_op.create_check_constraint(
            batch_op.f(STATUS), "status IN ('pending', 'delivered', 'failed')"
        )
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_tenant_id_subject_id"))
        batch_op.drop_column("subject_id")
