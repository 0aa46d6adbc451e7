"""Every table of the service, and only tables.

Every tenant-owned table leads its primary key, foreign keys and indexes with ``tenant_id`` so the
schema can be distributed by tenant without change. Built-in frameworks belong to the system
tenant and are readable by every tenant.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

SYSTEM_TENANT_ID = uuid.UUID("00000000-0000-0000-0000-000000000000")

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware timestamps on every engine (SQLite drops the offset; we restore UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: timestamps must carry a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_type=UTCDateTime,
        nullable=nullable,
    )


class Tenant(SQLModel, table=True):
    __tablename__ = "tenant"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        # Keys are looked up by id before the tenant is known, so the id is unique on its own.
        sa.UniqueConstraint("id"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    secret_hash: str = Field(max_length=128)
    scopes: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    created_by_key_id: uuid.UUID | None = Field(default=None)


class Framework(SQLModel, table=True):
    __tablename__ = "framework"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "key"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(max_length=64)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)
    is_builtin: bool = Field(default=False)
    cloned_from: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class FrameworkVersion(SQLModel, table=True):
    __tablename__ = "framework_version"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "framework_id"],
            ["framework.tenant_id", "framework.id"],
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("tenant_id", "framework_id", "version"),
        sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name="status"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    framework_id: uuid.UUID
    version: int
    status: str = Field(default="draft", max_length=16)
    # The whole validated framework document; a published version never changes.
    content: dict[str, Any] = Field(sa_type=JSONDocument)
    revision: int = Field(default=1)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    published_at: datetime | None = _ts(nullable=True)


class CaseIdentifier(SQLModel, table=True):
    """Which framework version holds each CASE identifier, so a CASE lookup reads one row.

    Written with the version (and again when a draft's document changes); the identifiers are
    those of ``app.interop.case``, derived from the owner tenant, key, version and element.
    """

    __tablename__ = "case_identifier"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "version_id"],
            ["framework_version.tenant_id", "framework_version.id"],
            ondelete="CASCADE",
            # Checked at commit: the rows are added with their version, in one flush.
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.Index(None, "tenant_id", "version_id"),
        sa.CheckConstraint("kind IN ('CFDocument', 'CFItem')", name="kind"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    identifier: uuid.UUID = Field(primary_key=True)
    version_id: uuid.UUID
    kind: str = Field(max_length=16)


class Subject(SQLModel, table=True):
    __tablename__ = "subject"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "external_ref"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    external_ref: str = Field(max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    track: str | None = Field(default=None, max_length=64)
    current_level: str | None = Field(default=None, max_length=64)
    attributes: dict[str, str] = Field(default_factory=dict, sa_type=JSONDocument)
    revision: int = Field(default=1)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # Kept by a Postgres trigger on assessment inserts (migration 0006) for the score memo's
    # fingerprint; not part of the API and not maintained on SQLite, where a digest of the
    # ratings stands in (app/scores/repository.py).
    assessments_revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    latest_framework_key: str | None = Field(default=None, max_length=64)


class Assessment(SQLModel, table=True):
    __tablename__ = "assessment"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subject.tenant_id", "subject.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["framework_tenant_id", "framework_version_id"],
            ["framework_version.tenant_id", "framework_version.id"],
        ),
        sa.Index(None, "tenant_id", "subject_id", "assessed_at"),
        sa.Index(None, "tenant_id", "statement_id"),
        sa.CheckConstraint(
            "rater_role IN ('self', 'manager', 'peer', 'direct_report', 'external', 'calibrated')",
            name="rater_role",
        ),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID
    # Built-in versions live in the system tenant, so the reference names the owning tenant.
    framework_tenant_id: uuid.UUID
    framework_version_id: uuid.UUID
    rater_ref: str = Field(max_length=200)
    rater_role: str = Field(max_length=16)
    assessed_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = _ts()
    sequence: int = Field(default=0, sa_type=sa.BigInteger)
    # Provenance of an assessment made from an xAPI statement's score (migration 0014):
    # voiding the statement removes it.
    statement_id: uuid.UUID | None = Field(default=None)


class Rating(SQLModel, table=True):
    __tablename__ = "rating"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "assessment_id"],
            ["assessment.tenant_id", "assessment.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    assessment_id: uuid.UUID = Field(primary_key=True)
    competency_key: str = Field(primary_key=True, max_length=64)
    proficiency: int
    evidence: str | None = Field(default=None, max_length=4000)
    confidence: float | None = Field(default=None)


class CompletedActivity(SQLModel, table=True):
    __tablename__ = "completed_activity"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subject.tenant_id", "subject.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    subject_id: uuid.UUID = Field(primary_key=True)
    activity_key: str = Field(primary_key=True, max_length=64)
    completed_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = _ts()
    # Provenance: the xAPI statement that recorded it (None when posted directly); voiding
    # that statement removes exactly the completions it recorded (migration 0013).
    statement_id: uuid.UUID | None = Field(default=None)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.Index(None, "tenant_id", "occurred_at"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    occurred_at: datetime = _ts()
    actor_key_id: uuid.UUID | None = Field(default=None)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=64)
    object_id: str = Field(max_length=200)
    # Never secrets, never evidence text: only ids, keys and counts.
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)


class IdempotencyRecord(SQLModel, table=True):
    """The stored response of a create request, replayed when the same key comes again."""

    __tablename__ = "idempotency_record"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        # A stored response about a person goes when the person is erased.
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subject.tenant_id", "subject.id"], ondelete="CASCADE"
        ),
        sa.Index(None, "tenant_id", "expires_at"),
        sa.Index(None, "tenant_id", "subject_id"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=64)
    subject_id: uuid.UUID | None = Field(default=None)
    status_code: int
    body: str = Field(sa_type=sa.Text)
    headers: dict[str, str] = Field(default_factory=dict, sa_type=JSONDocument)
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime)


class WebhookSubscription(SQLModel, table=True):
    """An integration's URL subscribed to some event types, with its signing secret."""

    __tablename__ = "webhook_subscription"
    __table_args__ = (sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),)

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    # HMAC needs the secret itself to sign; it is shown once and never returned again.
    secret: str = Field(max_length=100)
    active: bool = Field(default=True)
    created_at: datetime = _ts()


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription and the history of trying to deliver it."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "subscription_id"],
            ["webhook_subscription.tenant_id", "webhook_subscription.id"],
            ondelete="CASCADE",
        ),
        sa.Index(None, "tenant_id", "subscription_id", "created_at"),
        sa.Index(None, "tenant_id", "subject_id"),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed', 'cancelled')", name="status"
        ),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subscription_id: uuid.UUID
    # The person the event is about, so erasure finds their deliveries by id (migration 0007).
    # No foreign key: the delivery outlives the person, redacted, as the audit log does.
    subject_id: uuid.UUID | None = Field(default=None)
    event: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_type=JSONDocument)
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _ts()
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _ts()
    delivered_at: datetime | None = _ts(nullable=True)


class WebhookQueue(SQLModel, table=True):
    """What the dispatcher must look at next: ids and times only, no payloads.

    Besides tenants, keys and the rate limiter's buckets, it is the one table without row-level
    security, because the dispatcher works across tenants; it switches to each delivery's
    tenant to read it.
    """

    __tablename__ = "webhook_queue"
    __table_args__ = (sa.Index(None, "next_attempt_at"),)

    delivery_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    next_attempt_at: datetime = _ts()


class RateLimitBucket(SQLModel, table=True):
    """One API key's shared token bucket (Postgres; SQLite limits in process): numbers only.

    Like ``webhook_queue`` it has no row-level security: the rate limiter updates it in one
    autocommit statement before the request's tenant transaction exists. It holds no personal
    data, and Postgres keeps it UNLOGGED (migration 0011): losing it in a crash refills every
    bucket once, which is cheaper than writing WAL for every lease.
    """

    __tablename__ = "rate_limit_bucket"

    tenant_id: uuid.UUID = Field(primary_key=True)
    key_id: uuid.UUID = Field(primary_key=True)
    tokens: float
    # Tokens handed out by the last lease (read back by that statement's RETURNING).
    granted: int
    updated_at: datetime = _ts()


class LearningRecordSettings(SQLModel, table=True):
    """How a tenant's xAPI actors map to its subjects: the account homePages it registered."""

    __tablename__ = "learning_record_settings"
    __table_args__ = (sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),)

    tenant_id: uuid.UUID = Field(primary_key=True)
    account_home_pages: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    # Opt-in (migration 0014): result.score.scaled of a statement about a framework activity
    # becomes an external rating of the competencies the activity develops.
    result_ratings: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    updated_at: datetime = _ts()


class LearningRecordAgent(SQLModel, table=True):
    """A subject's registered xAPI mailbox, kept only as the SHA-1 of its ``mailto:`` IRI
    (the form of xAPI's ``mbox_sha1sum``), so both identifiers map without storing the address."""

    __tablename__ = "learning_record_agent"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subject.tenant_id", "subject.id"], ondelete="CASCADE"
        ),
        sa.Index(None, "tenant_id", "subject_id"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    mbox_sha1sum: str = Field(primary_key=True, max_length=40)
    subject_id: uuid.UUID
    created_at: datetime = _ts()


class XapiStatement(SQLModel, table=True):
    """Every xAPI statement id received, with the digest of its content (replays and 409s).

    A statement whose actor maps to a subject is kept whole and goes with the person; one that
    maps to nobody keeps no content (only the id, digest and what it was), so nothing personal
    stays behind besides the bounded unmapped report.
    """

    __tablename__ = "xapi_statement"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subject.tenant_id", "subject.id"], ondelete="CASCADE"
        ),
        sa.Index(None, "tenant_id", "subject_id"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(primary_key=True)
    digest: str = Field(max_length=64)
    subject_id: uuid.UUID | None = Field(default=None)
    verb: str = Field(max_length=2000)
    # The statement a voiding statement voids (None for any other statement).
    voids: uuid.UUID | None = Field(default=None)
    voided: bool = Field(default=False)
    content: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    stored_at: datetime = _ts()


class XapiUnmapped(SQLModel, table=True):
    """One line of a tenant's bounded report of statements it could not map: an actor no
    subject answers to, or an activity IRI no framework names; how often and when last."""

    __tablename__ = "xapi_unmapped"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.Index(None, "tenant_id", "last_seen_at"),
        sa.CheckConstraint("reason IN ('unknown_actor', 'unknown_activity')", name="reason"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    # SHA-256 of (reason, actor, activity), so one line per such pair.
    id: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=16)
    # The actor's identifier for unknown actors (e.g. "mbox:mailto:ada@example.com", or the
    # account as "<homePage>|<name>"); None for unknown activities.
    actor_kind: str | None = Field(default=None, max_length=16)
    actor_id: str | None = Field(default=None, max_length=2000)
    # SHA-1 of the mailbox for mbox and mbox_sha1sum actors, so erasure finds them.
    actor_mbox_sha1sum: str | None = Field(default=None, max_length=40)
    activity_iri: str | None = Field(default=None, max_length=2000)
    statements: int = Field(default=0)
    first_seen_at: datetime = _ts()
    last_seen_at: datetime = _ts()


class CalibrationSession(SQLModel, table=True):
    """A calibration meeting over a cohort: its snapshot's shared parts, and whether it closed.

    The people it was taken over are ``calibration_member`` rows and the adjustments proposed
    ``calibration_proposal`` rows, both going with the person on erasure.
    """

    __tablename__ = "calibration_session"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["framework_tenant_id", "framework_version_id"],
            ["framework_version.tenant_id", "framework_version.id"],
        ),
        sa.Index(None, "tenant_id", "created_at"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="status"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    framework_tenant_id: uuid.UUID
    framework_version_id: uuid.UUID
    framework_key: str = Field(max_length=64)
    framework_version: int
    as_of: datetime = Field(sa_type=UTCDateTime)
    window_days: int
    # The cohort filter it was taken with (ids and attribute values, never a person's ref).
    scope: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    # The rater-effects answer at the snapshot, without its per-person parts (those are members).
    rater_effects: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    status: str = Field(default="open", max_length=16)
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()
    closed_at: datetime | None = _ts(nullable=True)
    closed_by: str | None = Field(default=None, max_length=200)
    calibrated_ratings: int = Field(default=0)


class CalibrationMember(SQLModel, table=True):
    """One person of a session's snapshot: their score when it was taken."""

    __tablename__ = "calibration_member"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"],
            ["calibration_session.tenant_id", "calibration_session.id"],
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subject.tenant_id", "subject.id"], ondelete="CASCADE"
        ),
        sa.Index(None, "tenant_id", "subject_id"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    session_id: uuid.UUID = Field(primary_key=True)
    subject_id: uuid.UUID = Field(primary_key=True)
    subject_ref: str = Field(max_length=200)
    position: int
    attained_level: str | None = Field(default=None, max_length=64)
    next_level: str | None = Field(default=None, max_length=64)
    level_index: float
    # Readiness per level key, and a_c per competency in the version's order (null: unrated).
    readiness: dict[str, float] = Field(default_factory=dict, sa_type=JSONDocument)
    values: list[float | None] = Field(default_factory=list, sa_type=JSONDocument)
    fair_values: list[float | None] = Field(default_factory=list, sa_type=JSONDocument)
    fair_level_index: float | None = Field(default=None)


class CalibrationProposal(SQLModel, table=True):
    """A member's proposed value for one person's competency, with the reason, on the record.

    One per (session, person, competency): proposing again replaces it (idempotent).
    """

    __tablename__ = "calibration_proposal"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id", "subject_id"],
            [
                "calibration_member.tenant_id",
                "calibration_member.session_id",
                "calibration_member.subject_id",
            ],
            ondelete="CASCADE",
        ),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    session_id: uuid.UUID = Field(primary_key=True)
    subject_id: uuid.UUID = Field(primary_key=True)
    competency_key: str = Field(primary_key=True, max_length=64)
    value: int
    reason: str = Field(max_length=4000)
    proposer: str = Field(max_length=200)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    withdrawn_at: datetime | None = _ts(nullable=True)


class RaterEffectEstimate(SQLModel, table=True):
    """A rater-effect fit an admin recorded for one framework version: the score path of a
    framework with ``rater_adjustment`` uses the latest one, so scores move only when an estimate
    is recorded (or erasure edits one: ``revision``), never when someone else is rated."""

    __tablename__ = "rater_effect_estimate"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["framework_tenant_id", "framework_version_id"],
            ["framework_version.tenant_id", "framework_version.id"],
            ondelete="CASCADE",
        ),
        sa.Index(None, "tenant_id", "framework_version_id", "recorded_at"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    framework_tenant_id: uuid.UUID
    framework_version_id: uuid.UUID
    framework_key: str = Field(max_length=200)
    framework_version: int
    as_of: datetime = _ts()
    window_days: int
    sigma: float | None = Field(default=None)
    # Bumped whenever erasure removes a rater from it, so rendered scores made with it expire.
    revision: int = Field(default=1)
    recorded_at: datetime = _ts()


class RaterEffectEstimateRater(SQLModel, table=True):
    """One rater of a recorded estimate: effect, standard error, status and connected group."""

    __tablename__ = "rater_effect_estimate_rater"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "estimate_id"],
            ["rater_effect_estimate.tenant_id", "rater_effect_estimate.id"],
            ondelete="CASCADE",
        ),
        sa.Index(None, "tenant_id", "rater_ref"),
        sa.CheckConstraint(
            "status IN ('ok', 'insufficient_data', 'not_comparable')", name="status"
        ),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    estimate_id: uuid.UUID = Field(primary_key=True)
    role: str = Field(primary_key=True, max_length=16)
    rater_ref: str = Field(primary_key=True, max_length=200)
    status: str = Field(max_length=24)
    effect: float | None = Field(default=None)
    standard_error: float | None = Field(default=None)
    group: int | None = Field(default=None)
