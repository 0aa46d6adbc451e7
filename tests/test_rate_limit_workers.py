"""A key's rate limit holds across workers: real ``ladder serve --workers 2`` on Postgres.

Requests go over fresh connections from several threads, so the kernel hands them to both
workers (the test checks that both asked the shared store). With the limit counted in each
worker's memory, two workers let up to twice the limit through.
"""

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import make_postgres_database, run
from tests.fault.appserver import AppServer, app_env, count_tracebacks, run_ladder
from tests.observability.test_workers import worker_pids

pytestmark = pytest.mark.postgres

LIMIT = 20  # per minute, burst the same: one token back every 3 s, one token per lease
REQUESTS = 60
THREADS = 6


@pytest.fixture
def database_url() -> Iterator[str]:
    _, url, drop = make_postgres_database()
    try:
        yield url
    finally:
        drop()


def _pids_owning_local_ports(pids: set[int], ports: set[int]) -> set[int]:
    """Which of ``pids`` hold a TCP socket bound to one of ``ports`` on this host (Linux)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in ports:
                inodes[fields[9]] = port
    owners = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                owners.add(pid)
    return owners


async def _rate_limit_client_ports(url: str) -> set[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT client_port FROM pg_stat_activity"
            " WHERE application_name = 'competency-ladder-rate-limit'"
        )
    finally:
        await conn.close()
    return {row["client_port"] for row in rows}


def test_two_workers_hold_one_combined_limit(database_url: str, tmp_path: Path) -> None:
    env = app_env(
        database_url,
        RATE_LIMIT_PER_MINUTE=str(LIMIT),
        RATE_LIMIT_BURST=str(LIMIT),
        WEBHOOKS_ENABLED="false",
    )
    run_ladder(tmp_path, env, "migrate")
    api_key = run_ladder(tmp_path, env, "create-tenant", "limits").strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {api_key}", "Connection": "close"}
    server = AppServer(tmp_path, env, tmp_path / "server.log", workers=2)
    server.start()
    try:
        statuses: list[int] = []
        retry_after: list[str | None] = []
        lock = threading.Lock()

        def fire(count: int) -> None:
            for _ in range(count):
                # A new client per request: a fresh connection each time.
                r = httpx.get(f"{server.base_url}/v1/frameworks", headers=headers, timeout=30)
                with lock:
                    statuses.append(r.status_code)
                    if r.status_code == 429:
                        retry_after.append(r.headers.get("retry-after"))

        started = time.monotonic()
        threads = [
            threading.Thread(target=fire, args=(REQUESTS // THREADS,)) for _ in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started

        ports = run(_rate_limit_client_ports(database_url))
        askers = _pids_owning_local_ports(worker_pids(server.pid), ports)
        assert len(askers) == 2, f"expected both workers to use the shared store: {askers}"

        allowed = statuses.count(200)
        refilled = int(elapsed * LIMIT / 60) + 1
        # The lease is one token at this limit (README), so no worker holds any back.
        assert LIMIT <= allowed <= LIMIT + refilled, (allowed, elapsed, statuses)
        assert statuses.count(429) == REQUESTS - allowed
        assert retry_after and all(v is not None and int(v) >= 1 for v in retry_after)
        assert count_tracebacks(server.log_text()) == 0
    finally:
        server.stop()
