"""Keep on each subject what the score cache fingerprints, so a score read is one cheap lookup.

``assessments_revision`` grows with every statement that inserts assessments of the subject
(assessments are immutable and only leave with the subject), and ``latest_framework_key`` is the
key of the framework of the subject's latest assessment — the framework a score without
parameters is computed against. A statement-level trigger on ``assessment`` keeps both on
Postgres. It locks the affected subjects in id order before updating them, so concurrent loads
cannot deadlock, and it reads the latest assessment in a statement of its own, after the lock, so
it sees what a concurrent writer of the same subject committed. Nothing maintains or reads the
columns on SQLite (the score cache is Postgres only).

Existing subjects are filled in when the migrating role can see them (row-level security hides
them from a non-superuser owner); a subject left unfilled is simply not answered from the cache
until its next assessment.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 00:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LATEST_KEY = """
    SELECT f.key
      FROM assessment a
      JOIN framework_version fv
        ON fv.tenant_id = a.framework_tenant_id AND fv.id = a.framework_version_id
      JOIN framework f ON f.tenant_id = fv.tenant_id AND f.id = fv.framework_id
     WHERE a.tenant_id = s.tenant_id AND a.subject_id = s.id
     ORDER BY a.assessed_at DESC, a.sequence DESC, a.id DESC
     LIMIT 1
"""

TRIGGER_FUNCTION = """
CREATE FUNCTION subject_assessed() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER AS $body$
BEGIN
    PERFORM 1
       FROM subject s
       JOIN (SELECT DISTINCT n.tenant_id, n.subject_id FROM new_assessments n) n
         ON s.tenant_id = n.tenant_id AND s.id = n.subject_id
      ORDER BY s.tenant_id, s.id
        FOR NO KEY UPDATE OF s;
    UPDATE subject s
       SET assessments_revision = s.assessments_revision + 1,
           latest_framework_key = (LATEST_KEY)
      FROM (SELECT DISTINCT n.tenant_id, n.subject_id FROM new_assessments n) n
     WHERE s.tenant_id = n.tenant_id AND s.id = n.subject_id;
    RETURN NULL;
END
$body$
""".replace("LATEST_KEY", LATEST_KEY)

TRIGGER = """
CREATE TRIGGER assessment_inserted
AFTER INSERT ON assessment
REFERENCING NEW TABLE AS new_assessments
FOR EACH STATEMENT EXECUTE FUNCTION subject_assessed()
"""


def upgrade() -> None:
    with op.batch_alter_table("subject", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("assessments_revision", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("latest_framework_key", sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "UPDATE subject s SET latest_framework_key = (LATEST_KEY)".replace("LATEST_KEY", LATEST_KEY)
    )
    op.execute(TRIGGER_FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS assessment_inserted ON assessment")
        op.execute("DROP FUNCTION IF EXISTS subject_assessed()")
    with op.batch_alter_table("subject", schema=None) as batch_op:
        batch_op.drop_column("latest_framework_key")
        batch_op.drop_column("assessments_revision")
