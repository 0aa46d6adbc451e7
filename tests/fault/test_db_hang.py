"""Fault test: a hung database (every Postgres process frozen with SIGSTOP) is answered in time.

While the private cluster is frozen, TCP connections to it are still accepted by the kernel but
nothing answers, so only the service's own timeouts end a wait. Concurrent API calls of every
kind (ordinary reads and writes, the remembered-score read with its own connection pool, and
``/readyz``) must answer 503 problem+json with Retry-After within the bound the README documents
for the configured timeouts; afterwards the service recovers without a restart.

Also: a connection lost while COMMIT is in flight (made to wait on a synchronous standby that
does not exist, then terminated) is answered 503 ``commit-outcome-unknown``, never "unavailable".
"""

import asyncio
import threading
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import Settings
from tests.fault.appserver import AppServer, count_tracebacks, server_errors
from tests.fault.conftest import SUBJECT_REF, Cluster
from tests.fault.test_db_restart import assessment_body, check_503, ensure_subject, wait_ready

pytestmark = pytest.mark.fault

HANG_SETTINGS = {
    "DB_STATEMENT_TIMEOUT_MS": "2000",
    "DB_POOL_TIMEOUT_SECONDS": "2",
    "DB_CONNECT_TIMEOUT_SECONDS": "2",
    # A small pool, so that concurrent calls also wait for a pooled connection.
    "DB_POOL_SIZE": "3",
    "DB_MAX_OVERFLOW": "1",
}
ROUNDS = 2  # calls of each kind, one after the other, per thread
THREADS_PER_KIND = 4
MARGIN = 3.0  # scheduling slack on a busy 2-core machine (a correctness bound, not a benchmark)
READY_BOUND = 2.0  # /readyz's own timeout (README)


def documented_bound() -> float:
    """The README's worst case for an API call while the database hangs, for HANG_SETTINGS."""
    fields: dict[str, Any] = {k.lower(): v for k, v in HANG_SETTINGS.items()}
    settings = Settings(**fields)
    return settings.db_hang_bound_seconds


def call(client: httpx.Client, kind: str, headers: dict[str, str]) -> httpx.Response:
    if kind == "readyz":
        return client.get("/readyz")
    if kind == "list":
        return client.get("/v1/subjects", headers=headers)
    if kind == "score":
        return client.get(f"/v1/subjects/{SUBJECT_REF}/score", headers=headers)
    return client.post(
        "/v1/assessments",
        json=assessment_body(f"hang-{uuid.uuid4().hex[:8]}"),
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )


def test_hung_database_answers_503_within_the_documented_bound(
    cluster: Cluster, server_factory: Any
) -> None:
    server: AppServer = server_factory("server-hang", **HANG_SETTINGS)
    ensure_subject(server.base_url, cluster.headers)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        r = client.post(
            "/v1/assessments", json=assessment_body("hang-warm"), headers=cluster.headers
        )
        assert r.status_code == 201, r.text
        for _ in range(3):  # the score is remembered; every connection pool has connections
            r = call(client, "score", cluster.headers)
            assert r.status_code == 200, r.text
            assert call(client, "list", cluster.headers).status_code == 200
    bound = documented_bound()
    results: list[tuple[str, int | str, float]] = []
    lock = threading.Lock()

    def worker(kind: str) -> None:
        with httpx.Client(base_url=server.base_url, timeout=bound + 30) as client:
            for _ in range(ROUNDS):
                began = time.monotonic()
                try:
                    r = call(client, kind, cluster.headers)
                    outcome: int | str = r.status_code
                    problems = check_503(r, kind) if r.status_code == 503 else []
                except httpx.HTTPError as exc:
                    outcome, problems = type(exc).__name__, []
                with lock:
                    results.append((kind, outcome, time.monotonic() - began))
                    results.extend((kind, p, 0.0) for p in problems)

    kinds = ["readyz", "list", "score", "write"]
    pids = cluster.pg.freeze()
    try:
        threads = [
            threading.Thread(target=worker, args=(kind,), daemon=True)
            for kind in kinds
            for _ in range(THREADS_PER_KIND)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(ROUNDS * (bound + 40))
    finally:
        cluster.pg.thaw(pids)
    slowest = {k: max((s for kind, _, s in results if kind == k), default=0.0) for k in kinds}
    print(f"\n[fault] hung database: bound {bound:.1f}s, slowest {slowest}")
    print(f"[fault] outcomes: {sorted({(k, o) for k, o, _ in results}, key=str)}")
    failures = [f"{k}: {o}" for k, o, _ in results if o != 503]
    failures += [
        f"{k} took {s:.1f}s (bound {READY_BOUND if k == 'readyz' else bound:.1f}s + {MARGIN}s)"
        for k, _, s in results
        if s > (READY_BOUND if k == "readyz" else bound) + MARGIN
    ]
    assert len(results) >= len(kinds) * THREADS_PER_KIND * ROUNDS
    assert wait_ready(server.base_url, 30) is not None, "not ready after the database thawed"
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        r = call(client, "score", cluster.headers)
        assert r.status_code == 200, r.text
    log = server.log_text()
    assert not failures, "\n".join(failures[:20])
    assert count_tracebacks(log) == 0, "\n".join(server_errors(log))


def test_connection_lost_during_commit_answers_outcome_unknown(
    cluster: Cluster, server_factory: Any
) -> None:
    """COMMIT waits on a synchronous standby that does not exist (committed locally, not yet
    acknowledged); its backend is then terminated. The write is stored, and the client is told
    exactly that it may be: 503 commit-outcome-unknown, then the same key replays it."""
    server: AppServer = server_factory("server-commit-outcome")
    ref = f"commit-{uuid.uuid4().hex[:8]}"
    headers = {**cluster.headers, "Idempotency-Key": f"k-{ref}"}
    result: dict[str, Any] = {}

    def post() -> None:
        try:
            result["response"] = httpx.post(
                server.base_url + "/v1/subjects",
                json={"external_ref": ref},
                headers=headers,
                timeout=30,
            )
        except httpx.HTTPError as exc:
            result["error"] = exc

    async def scenario() -> int:
        admin = await asyncpg.connect(cluster.pg.url, timeout=10)
        try:
            await admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
            await admin.execute("SELECT pg_reload_conf()")
            await asyncio.sleep(0.5)
            thread = threading.Thread(target=post, daemon=True)
            thread.start()
            terminated = 0
            for _ in range(100):
                terminated = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'competency-ladder' AND wait_event = 'SyncRep'"
                )
                if terminated or not thread.is_alive():
                    break
                await asyncio.sleep(0.1)
        finally:
            await admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            await admin.execute("SELECT pg_reload_conf()")
            await admin.close()
        await asyncio.to_thread(thread.join, 30)
        return int(terminated)

    async def stored() -> int:
        conn = await asyncpg.connect(cluster.pg.url, timeout=10)
        try:
            return int(
                await conn.fetchval("SELECT count(*) FROM subject WHERE external_ref = $1", ref)
            )
        finally:
            await conn.close()

    terminated = asyncio.run(scenario())
    assert terminated == 1, f"no COMMIT waited on the standby: {result}"
    assert "error" not in result, repr(result.get("error"))
    r = result["response"]
    print(f"\n[fault] COMMIT lost: {r.status_code} {r.json().get('type')}")
    assert r.status_code == 503, r.text
    assert r.json()["type"].endswith("/commit-outcome-unknown"), r.text
    assert r.headers["retry-after"]
    assert asyncio.run(stored()) == 1, "the write was not stored: then it was not unknown"
    again = httpx.post(
        server.base_url + "/v1/subjects", json={"external_ref": ref}, headers=headers, timeout=30
    )
    assert again.status_code == 201, again.text
    assert again.headers["idempotency-replayed"] == "true"
    assert asyncio.run(stored()) == 1
    log = server.log_text()
    assert count_tracebacks(log) == 0, "\n".join(server_errors(log))
