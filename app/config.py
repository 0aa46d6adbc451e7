"""Service settings, read once from the environment (prefix-free names, documented in README)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.auth.keys import DEFAULT_KEY_PREFIX, KEY_PREFIX_PATTERN

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'ladder.db'}"


class Settings(BaseSettings):
    """Everything an operator can set; unsafe combinations are refused at start."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_SQLITE_URL
    # Postgres: the app's own role is subject to row-level security; migrations may use an owner.
    migration_database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    db_statement_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # HTTP server (`ladder serve`/`ladder dev`), per worker: the service must be safe to expose
    # without a proxy. Request line plus headers are refused with 431 beyond these sizes; a
    # connection that has not sent a complete request head within the timeout is closed (408).
    http_max_header_bytes: int = Field(default=32_768, ge=1024, le=1_048_576)
    http_max_headers: int = Field(default=100, ge=10, le=10_000)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    http_keepalive_timeout_seconds: int = Field(default=5, ge=1, le=300)
    http_max_connections: int = Field(default=1000, ge=1, le=100_000)
    # Memory per worker for rendered score responses, each reused only while its fingerprint
    # holds (app/scores/memo.py); 0 turns the memo off.
    score_cache_mb: int = Field(default=64, ge=0, le=65_536)
    load_builtin_frameworks: bool = True
    api_key_prefix: str = Field(default=DEFAULT_KEY_PREFIX, pattern=rf"^{KEY_PREFIX_PATTERN}$")
    # Postgres: how long a worker may answer from its in-memory copy of a key. Revokes reach
    # every worker at once through LISTEN/NOTIFY; this bounds a missed notification. 0: no cache.
    api_key_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    dev_api_key_file: Path = PROJECT_ROOT / "var" / "dev-api-key"
    max_request_bytes: int = Field(default=5_000_000, ge=1024)
    max_bulk_request_bytes: int = Field(default=64_000_000, ge=1024)
    max_bulk_items: int = Field(default=20_000, ge=1, le=1_000_000)
    # xAPI: statements one POST may carry, and lines the per-tenant unmapped report keeps.
    xapi_max_statements: int = Field(default=1000, ge=1, le=20_000)
    xapi_unmapped_limit: int = Field(default=200, ge=1, le=100_000)
    # Lowers the largest `limit` a list accepts (200, as the OpenAPI document declares).
    max_page_size: int = Field(default=200, ge=1, le=200)
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
    # Refuse creates without an Idempotency-Key (422), so no client can retry one unsafely.
    require_idempotency_key: bool = False
    # Requests per minute per API key, counted across every worker and replica on Postgres (in
    # the process on SQLite); 0 turns rate limiting off. Burst 0 means the per-minute figure.
    rate_limit_per_minute: int = Field(default=0, ge=0, le=1_000_000)
    rate_limit_burst: int = Field(default=0, ge=0, le=1_000_000)
    # Tokens a worker leases from the shared bucket per trip to Postgres (capped at a twentieth
    # of the burst): the combined limit holds within that many requests per worker.
    rate_limit_lease_tokens: int = Field(default=10, ge=1, le=10_000)
    # When Postgres cannot be asked: "open" lets each worker limit on its own meanwhile,
    # "closed" refuses API calls with 503 and Retry-After.
    rate_limit_fail_mode: Literal["open", "closed"] = "open"
    rate_limit_store_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    webhooks_enabled: bool = True
    # Deliveries to loopback, private, link-local or reserved addresses are refused (SSRF)
    # unless this is set, e.g. for a receiver on the same host in development and tests.
    webhooks_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    docs_enabled: bool = True
    # Where clients reach the service: the base of the URIs written into CASE packages. Never
    # taken from a request's Host header, which any client can set.
    public_base_url: str = Field(default="http://localhost:8000", max_length=500)
    log_level: str = "info"
    # One JSON object a line (`ladder serve`), or text for a terminal (`ladder dev` sets it).
    log_format: Literal["json", "text"] = "json"
    # One log line per request: request id, tenant and key ids, route template, status, time.
    log_requests: bool = True
    # Prometheus series are kept unless turned off; GET /metrics answers only a scraper sending
    # `Authorization: Bearer <METRICS_TOKEN>` (unset: /metrics is off).
    metrics_enabled: bool = True
    metrics_token: str | None = Field(default=None, min_length=16, max_length=200, repr=False)
    # Label request counts with the tenant id (more series; tenant ids reach the metrics store).
    metrics_tenant_label: bool = False

    @field_validator("public_base_url")
    @classmethod
    def _plain_http_base(cls, value: str) -> str:
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.port == 0  # reading the port refuses one that is not a number 1-65535
            or parts.username is not None
            or parts.query
            or parts.fragment
            or any(ch.isspace() or not ch.isprintable() for ch in value)
        ):
            raise ValueError("must be an http(s) URL without credentials, query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("production needs DATABASE_URL pointing at Postgres, not SQLite")
        return self

    @property
    def db_command_timeout_seconds(self) -> float:
        """The driver's own limit on one statement: a backstop for a database that does not
        answer at all (Postgres' statement_timeout, 1 s earlier, ends a slow statement first)."""
        if self.db_statement_timeout_ms == 0:
            return 60.0
        return self.db_statement_timeout_ms / 1000 + 1

    @property
    def db_hang_bound_seconds(self) -> float:
        """The longest an API call waits on a database that does not answer (README): a
        pooled connection, its first statement until the command timeout, then a new connection."""
        return (
            self.db_pool_timeout_seconds
            + self.db_command_timeout_seconds
            + self.db_connect_timeout_seconds
        )

    @property
    def is_sqlite(self) -> bool:
        """True when the store is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
