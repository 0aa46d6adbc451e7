"""Fault test: a hung database (every Postgres process frozen with SIGSTOP) is answered in time.

While the private cluster is frozen, TCP connections to it are still accepted by the kernel but
nothing answers, so only the service's own timeouts end a wait. Concurrent API calls of every
kind (ordinary reads and writes, the remembered-score read with its own connection pool, and
``/readyz``) must answer 503 problem+json with Retry-After within the bound the README documents
for the configured timeouts; afterwards the service recovers without a restart.
"""

import threading
import time
import uuid
from typing import Any

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
    settings = Settings(**{k.lower(): v for k, v in HANG_SETTINGS.items()})
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
