"""One round trip for a repeated score read: check the key and fingerprint the subject's inputs.

``score_lookup(key id, secret hash, subject ref)`` returns the key's row and, only when the hash
matches (otherwise nothing), sets the transaction's tenant and returns what a score of the subject depends on: the
subject's id and revision, the framework version it would be scored against (the latest
published version of the framework of its latest assessment) and the ids of its assessments.
The service keeps rendered score responses in memory and serves one again only while this
fingerprint is unchanged. The function runs with the caller's rights, so row-level security
applies to every read in it exactly as to the service's own queries. Postgres only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 00:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FUNCTION = """
CREATE FUNCTION score_lookup(p_key_id uuid, p_secret_hash text, p_ref text)
RETURNS TABLE (
    tenant_id uuid,
    secret_hash text,
    scopes text,
    expires_at timestamptz,
    revoked_at timestamptz,
    subject_id uuid,
    subject_revision integer,
    version_id uuid,
    version_revision integer,
    assessment_ids uuid[]
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $body$
DECLARE
    found_tenant uuid;
BEGIN
    -- The tenant is set only for the key whose secret hash matches: an unknown key or a wrong
    -- secret gets no row and reads nothing of any tenant.
    SELECT ak.tenant_id, ak.secret_hash, ak.scopes::text, ak.expires_at, ak.revoked_at,
           set_config('app.tenant_id', ak.tenant_id::text, true)::uuid
      INTO tenant_id, secret_hash, scopes, expires_at, revoked_at, found_tenant
      FROM api_key ak
     WHERE ak.id = p_key_id AND ak.secret_hash = p_secret_hash;
    IF found_tenant IS NULL THEN
        RETURN;
    END IF;
    -- One statement for the rest: the subject, the version the service would score it against
    -- (latest published version of the framework of its latest assessment) and its assessments.
    SELECT sb.id, sb.revision, v.id, v.revision, ids.ids
      INTO subject_id, subject_revision, version_id, version_revision, assessment_ids
      FROM subject sb
      LEFT JOIN LATERAL (
            SELECT f.key
              FROM assessment a
              JOIN framework_version fv
                ON fv.tenant_id = a.framework_tenant_id AND fv.id = a.framework_version_id
              JOIN framework f ON f.tenant_id = fv.tenant_id AND f.id = fv.framework_id
             WHERE a.tenant_id = sb.tenant_id AND a.subject_id = sb.id
             ORDER BY a.assessed_at DESC, a.sequence DESC, a.id DESC
             LIMIT 1) latest ON true
      LEFT JOIN LATERAL (
            SELECT fv.id, fv.revision
              FROM framework f
              JOIN framework_version fv ON fv.tenant_id = f.tenant_id AND fv.framework_id = f.id
             WHERE f.key = latest.key
               AND f.tenant_id IN (sb.tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
               AND fv.status = 'published'
             ORDER BY f.tenant_id DESC, fv.version DESC
             LIMIT 1) v ON true
      LEFT JOIN LATERAL (
            SELECT array_agg(a.id ORDER BY a.id) AS ids
              FROM assessment a
             WHERE a.tenant_id = sb.tenant_id AND a.subject_id = sb.id) ids ON true
     WHERE sb.tenant_id = found_tenant AND sb.external_ref = p_ref;
    tenant_id := found_tenant;
    RETURN NEXT;
END
$body$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS score_lookup(uuid, text, text)")
