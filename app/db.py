"""Engine factory, per-transaction tenant context, and the session dependency."""

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_only
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection

from app.config import Settings
from app.errors import CommitOutcomeUnknown, is_transient_database_error

TENANT_SETTING = "app.tenant_id"
_AFTER_UNIT = "after_unit_of_work"
_WRITES = "ladder_unit_writes"  # an execution option: this unit of work may write
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def async_url(url: str) -> str:
    """Normalize a database URL to the async driver this service uses."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif driver == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def driver_url(url: str) -> str:
    """A database URL as the plain asyncpg driver takes it (no SQLAlchemy driver suffix): for
    the connections the service opens outside SQLAlchemy (the rate limiter's pool, the key-change
    listener)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's own transaction handling ignores SAVEPOINT semantics and can commit
    # behind SQLAlchemy's back; hand transaction control to SQLAlchemy (it emits BEGIN below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A unit of work that may write takes the write lock as it begins, so a second writer waits
    # for the first (up to busy_timeout). Begun deferred, it would read a snapshot first and,
    # when another writer had committed since, fail at once on its first write: SQLite cannot
    # move a transaction's snapshot forward, and busy_timeout does not wait for that. Readers
    # begin deferred: in WAL mode they never wait for a writer.
    immediate = conn.get_execution_options().get(_WRITES, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """An async engine for Postgres (asyncpg) or the embedded SQLite file."""
    target = async_url(url or settings.database_url)
    parsed = make_url(target)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(target)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine = create_async_engine(
        target,
        # No pre-ping: SQLAlchemy's costs three round trips per checkout (BEGIN, ";",
        # ROLLBACK). A connection the server closed (restart, crash, terminated backend) is
        # refused at checkout without asking (_refuse_closed); one that breaks later fails its
        # request with 503 and invalidates every older pooled connection.
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            # Bounds every statement, COMMIT and pool pre-ping even when the server does not
            # answer at all (statement_timeout needs a live server to fire).
            "command_timeout": settings.db_command_timeout_seconds,
            "server_settings": {
                "application_name": "competency-ladder",
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "idle_in_transaction_session_timeout": "60000",
            },
        },
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection whose socket the server has closed is replaced, at no round trip.

    asyncpg notices the close as soon as the event loop reads it (a restart or a terminated
    backend sends its goodbye and closes); the pool then discards the connection and checks
    out another (or opens a new one).
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


class _TenantTransaction:
    """A transaction begun with its tenant: ``BEGIN`` and the transaction-local tenant setting
    sent as one simple-query message (one round trip instead of two).

    It stands in for asyncpg's ``Transaction`` in SQLAlchemy's asyncpg adapter, which asks a
    transaction for nothing but ``commit`` and ``rollback``. The tenant id is a ``uuid.UUID``,
    whose text is hex digits and dashes only, so it is written into the message as a literal.
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def start(self, tenant_id: uuid.UUID) -> None:
        value = str(uuid.UUID(str(tenant_id)))  # a UUID's canonical text, nothing else
        await self._connection.execute(
            f"BEGIN; SELECT set_config('{TENANT_SETTING}', '{value}', true)"
        )

    async def commit(self) -> None:
        await self._connection.execute("COMMIT;")

    async def rollback(self) -> None:
        await self._connection.execute("ROLLBACK;")


def _begin_with_tenant(connection: Connection, tenant_id: uuid.UUID) -> bool:
    """Begin the connection's transaction with the tenant in one round trip; False when the
    transaction has begun already, or is not one this can begin (the caller sets it then)."""
    adapted: Any = connection.connection.dbapi_connection
    if (
        getattr(adapted, "_transaction", True) is not None  # not asyncpg's adapter, or begun
        or adapted.isolation_level is not None
        or adapted.readonly
        or adapted.deferrable
    ):
        return False
    driver = adapted.driver_connection
    transaction = _TenantTransaction(driver)
    try:
        await_only(transaction.start(tenant_id))
    except BaseException as error:
        # Lost, timed out or cancelled: whether the server began anything is unknown, so the
        # connection is closed at once (no round trip) and never reused; the pool replaces it
        # at its next checkout. Nothing was done yet, so it is a transient error (503 with
        # Retry-After): timeouts and socket errors are already; the driver's own errors are
        # raised as SQLAlchemy raises errors of a connection it invalidated.
        driver.terminate()
        if isinstance(error, Exception) and type(error).__module__.startswith("asyncpg"):
            raise DBAPIError("BEGIN", None, error, connection_invalidated=True) from error
        raise
    adapted._transaction = transaction
    return True


def _set_tenant_on_begin(session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    """Give every transaction the tenant it runs for, so row-level security can see it."""
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None or connection.dialect.name != "postgresql":
        return
    if _begin_with_tenant(connection, tenant_id):
        return
    connection.execute(
        text("SELECT set_config(:name, :value, true)"),
        {"name": TENANT_SETTING, "value": str(tenant_id)},
    )


event.listen(Session, "after_begin", _set_tenant_on_begin)


def _sqlstate(exc: BaseException) -> str | None:
    for err in (exc, getattr(exc, "orig", None)):
        code = getattr(err, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


class CommitAwareSession(AsyncSession):
    """A session whose ``commit`` tells a failure before COMMIT from one during it.

    Everything pending is flushed first: a failure there leaves nothing stored. Once COMMIT has
    been sent, a lost connection (or no answer within the command timeout) means the server
    may have committed or not; that is raised as ``CommitOutcomeUnknown`` (503 with its own
    problem type), the one place where every commit of the service makes this distinction.
    """

    async def commit(self) -> None:
        if self.in_transaction():
            await self.flush()
        try:
            await super().commit()
        except Exception as exc:
            # Class 40 (serialization failure, deadlock) is the server saying it rolled back.
            code = _sqlstate(exc) or ""
            if is_transient_database_error(exc) and not code.startswith("40"):
                raise CommitOutcomeUnknown(
                    "The connection to the database failed while this request was being "
                    "committed, so it may or may not have been stored. Retry it only with the "
                    "same Idempotency-Key (the replay returns the stored response); without a "
                    "key, check whether it was stored before retrying."
                ) from exc
            raise


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (responses are built after it)."""
    return async_sessionmaker(engine, class_=CommitAwareSession, expire_on_commit=False)


def remember_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope this session's later transactions to one tenant (each sets it when it begins)."""
    session.sync_session.info["tenant_id"] = tenant_id


async def bind_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope this session's current and later transactions to one tenant."""
    remember_tenant(session, tenant_id)
    if session.in_transaction():
        conn = await session.connection()
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT set_config(:name, :value, true)"),
                {"name": TENANT_SETTING, "value": str(tenant_id)},
            )


@asynccontextmanager
async def unit_of_work(
    maker: async_sessionmaker[AsyncSession], *, writes: bool = True
) -> AsyncIterator[AsyncSession]:
    """One transaction: committed once when the block succeeds, rolled back when it raises.

    The only place the service commits. A request gets it through ``get_session``; the few
    units of work outside a request (start-up, the CLI, the webhook dispatcher's own batches)
    use it directly. Code inside a unit adds and flushes, never commits. ``writes=False`` (a
    request with a safe method) lets the embedded SQLite store begin it without the write lock.
    """
    session = maker(execution_options={_WRITES: True}) if writes else maker()
    try:
        try:
            yield session
            # Not reached when the block raised. A session that began nothing and holds
            # nothing (a read answered from memory) has nothing to commit.
            if session.in_transaction() or session.new or session.dirty or session.deleted:
                await session.commit()
        finally:
            # After a commit, or when nothing began, there is nothing to release; otherwise
            # closing rolls back and returns the connection.
            if session.in_transaction():
                await session.close()
    finally:
        for callback in session.info.pop(_AFTER_UNIT, ()):
            callback()


def after_unit_of_work(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's unit of work has ended (committed or rolled back)."""
    session.info.setdefault(_AFTER_UNIT, []).append(callback)


async def get_session(conn: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, committed after the handler returns (see SessionDep)."""
    writes = conn.scope.get("method") not in SAFE_METHODS
    async with unit_of_work(conn.app.state.sessionmaker, writes=writes) as session:
        yield session
