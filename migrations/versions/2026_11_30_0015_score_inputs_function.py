"""The score statement as a function that binds its tenant: a score read in one round trip.

``score_inputs(tenant, ref, framework key, version, known fingerprint...)`` answers what
``app/scores/repository.py`` reads for a score: the subject, its fingerprint and (unless the
known fingerprint still holds) its ratings, with the framework version chosen by the shadowing
rule. Before reading it binds the tenant for the current transaction only
(``set_config(..., true)``), so row-level security filters the read even when it is sent alone,
outside any ``BEGIN``: Postgres runs it as a one-statement transaction, and the tenant setting
ends with it (safe behind a transaction-mode pooler). Within a transaction already bound to
the same tenant it changes nothing; one bound to another tenant is refused.

SECURITY INVOKER (the default): it reads as the caller's role, under row-level security.
SQLite has no functions of this kind; the service reads there with the same query in SQLAlchemy
Core.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 15:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYSTEM_TENANT_ID = "00000000-0000-0000-0000-000000000000"

SIGNATURE = "score_inputs(uuid, text, text, integer, uuid, integer, integer, uuid, integer, text)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION score_inputs(
            p_tenant uuid, p_ref text, p_framework text, p_version integer,
            k_subject uuid, k_subject_revision integer, k_assessments_revision integer,
            k_version uuid, k_version_revision integer, k_estimate text
        ) RETURNS TABLE (
            subject_id uuid, subject_revision integer, assessments_revision integer,
            track varchar, owner_id uuid, framework_id uuid, version_id uuid,
            version_revision integer, version_number integer, estimate text,
            competency_key varchar, proficiency integer, rater_ref varchar, rater_role varchar,
            assessed_at timestamptz, sequence bigint
        )
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        #variable_conflict use_column
        DECLARE
            bound text := current_setting('app.tenant_id', true);
        BEGIN
            IF bound IS NULL OR bound = '' THEN
                PERFORM set_config('app.tenant_id', p_tenant::text, true);
            ELSIF bound <> p_tenant::text THEN
                RAISE EXCEPTION 'this transaction is bound to another tenant'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN QUERY
            WITH s AS (
                SELECT s.tenant_id, s.id, s.revision, s.assessments_revision, s.track,
                       s.latest_framework_key
                  FROM subject s
                 WHERE s.tenant_id = p_tenant AND s.external_ref = p_ref
            ), v AS (
                SELECT fv.tenant_id, fv.framework_id, fv.id, fv.revision, fv.version,
                       (SELECT e.id::text || ':' || e.revision
                          FROM rater_effect_estimate e
                         WHERE e.tenant_id = s.tenant_id AND e.framework_version_id = fv.id
                         ORDER BY e.recorded_at DESC, e.id DESC
                         LIMIT 1) AS estimate
                  FROM s
                  JOIN framework f
                    ON f.key = coalesce(p_framework, s.latest_framework_key)
                   AND (f.tenant_id = s.tenant_id
                        OR (f.tenant_id = '{SYSTEM_TENANT_ID}'::uuid
                            AND NOT EXISTS (SELECT FROM framework own
                                             WHERE own.tenant_id = s.tenant_id
                                               AND own.key = f.key)))
                  JOIN framework_version fv
                    ON fv.tenant_id = f.tenant_id AND fv.framework_id = f.id
                 WHERE CASE WHEN p_version IS NULL THEN fv.status = 'published'
                            ELSE fv.version = p_version END
                 ORDER BY f.tenant_id DESC, fv.version DESC
                 LIMIT 1
            )
            SELECT s.id, s.revision, s.assessments_revision, s.track,
                   v.tenant_id, v.framework_id, v.id, v.revision, v.version, v.estimate,
                   r.competency_key, r.proficiency, a.rater_ref, a.rater_role, a.assessed_at,
                   a.sequence
              FROM s
              LEFT JOIN v ON true
              LEFT JOIN (assessment a
                         JOIN framework_version afv
                           ON afv.tenant_id = a.framework_tenant_id
                          AND afv.id = a.framework_version_id
                         JOIN rating r ON r.tenant_id = a.tenant_id AND r.assessment_id = a.id)
                ON a.tenant_id = s.tenant_id AND a.subject_id = s.id
               AND afv.tenant_id = v.tenant_id AND afv.framework_id = v.framework_id
               AND NOT coalesce(s.id = k_subject AND s.revision = k_subject_revision
                                AND s.assessments_revision = k_assessments_revision
                                AND v.id = k_version AND v.revision = k_version_revision
                                AND v.estimate IS NOT DISTINCT FROM k_estimate, false)
             ORDER BY a.assessed_at, a.sequence, a.id, r.competency_key;
        END
        $$
        """  # noqa: S608 (only a constant, the system tenant's id, is interpolated)
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {SIGNATURE}")
