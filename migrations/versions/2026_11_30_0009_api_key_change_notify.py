"""Announce every change of an API key on the ``api_key_changed`` channel (Postgres).

Workers keep API keys in memory and listen on this channel; the trigger sends the key's id with
NOTIFY after any update or delete of an ``api_key`` row (a revoke through the API, an operator's
UPDATE, a tenant erased by cascade), so whichever path changes a key, every worker and replica
drops its copy when the transaction commits. Nothing is sent for an insert: a new key is in no
cache yet. SQLite has no NOTIFY and its workers do not cache keys.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 08:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION api_key_notify_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('api_key_changed', OLD.id::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER api_key_notify_change AFTER UPDATE OR DELETE ON api_key "
        "FOR EACH ROW EXECUTE FUNCTION api_key_notify_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER api_key_notify_change ON api_key")
    op.execute("DROP FUNCTION api_key_notify_change()")
