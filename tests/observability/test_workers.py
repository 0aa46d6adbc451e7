"""Metrics and logs of real ``ladder serve --workers 2`` on Postgres (issue 16).

Requests go over fresh connections from several threads, so the kernel hands them to both
workers; each worker keeps its values in files named after its process id, and a scrape answered
by either worker must count every request. A worker killed outright is replaced; its live
gauges go (its pool is gone), its counts stay.
"""

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from app.auth.keys import DEFAULT_KEY_PREFIX, parse_token
from tests.conftest import make_postgres_database
from tests.fault.appserver import AppServer, app_env, count_tracebacks, run_ladder
from tests.observability.test_metrics_and_logs import Samples, samples, total, value

pytestmark = pytest.mark.postgres

TOKEN = "worker-scrape-token-42"
REQUESTS = 40
THREADS = 4
POOL_SIZE, MAX_OVERFLOW = 3, 2


@pytest.fixture
def database_url() -> Iterator[str]:
    _, url, drop = make_postgres_database()
    try:
        yield url
    finally:
        drop()


def scrape(server: AppServer) -> Samples:
    r = httpx.get(
        f"{server.base_url}/metrics",
        headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return samples(r.text)


def requests_by_worker(directory: Path) -> dict[int, float]:
    """Each worker's own request count, read from its files alone."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        alone = directory.parent / f"alone-{pid}"
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        text = "".join(
            f"{s.name}{s.labels} {s.value}\n" for m in registry.collect() for s in m.samples
        )
        counts[pid] = sum(
            s.value
            for m in registry.collect()
            for s in m.samples
            if s.name == "ladder_http_requests_total"
        )
        assert text  # the file held something readable
        shutil.rmtree(alone)
    return counts


def worker_pids(parent: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                children.add(int(entry))
    return children


def test_two_workers_are_counted_together_and_log_json(database_url: str, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    env = app_env(
        database_url,
        METRICS_TOKEN=TOKEN,
        WEBHOOKS_ENABLED="false",
        DB_POOL_SIZE=str(POOL_SIZE),
        DB_MAX_OVERFLOW=str(MAX_OVERFLOW),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    run_ladder(tmp_path, env, "migrate")
    api_key = run_ladder(tmp_path, env, "create-tenant", "observed").strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {api_key}", "Connection": "close"}
    # Files an earlier run left behind are not counted.
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")
    server = AppServer(tmp_path, env, tmp_path / "server.log", workers=2)
    server.start()
    try:
        assert not (metrics_dir / "counter_999999.db").exists()
        request_ids: list[str] = []
        lock = threading.Lock()

        def fire(count: int) -> None:
            for _ in range(count):
                r = httpx.get(f"{server.base_url}/v1/frameworks", headers=headers, timeout=30)
                assert r.status_code == 200
                with lock:
                    request_ids.append(r.headers["x-request-id"])

        # The second worker may still be importing when the first answers the readiness probe,
        # and the kernel owes no fairness: rounds go on until both have served (bounded).
        fired = 0
        deadline = time.monotonic() + 60
        while True:
            threads = [
                threading.Thread(target=fire, args=(REQUESTS // THREADS,)) for _ in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            fired += REQUESTS
            per_worker = requests_by_worker(metrics_dir)
            served = {pid: n for pid, n in per_worker.items() if n > 0}
            if len(served) == 2 or time.monotonic() > deadline:
                break
        assert len(served) == 2, f"expected both workers to serve: {per_worker}"
        assert len(request_ids) == fired
        # Whichever worker answers the scrape, it counts both workers' requests.
        for _ in range(4):
            s = scrape(server)
            frameworks = total(
                s, "ladder_http_requests_total", route="/v1/frameworks", status="200"
            )
            assert frameworks == fired
        # Pool gauges summed over live workers: each may open POOL_SIZE + MAX_OVERFLOW.
        assert value(s, "ladder_db_pool_connections_max") == 2 * (POOL_SIZE + MAX_OVERFLOW)
        assert 0 <= value(s, "ladder_db_pool_connections_in_use") <= 2 * (POOL_SIZE + MAX_OVERFLOW)
        assert value(s, "ladder_db_pool_wait_seconds_count") >= fired
        assert value(s, "ladder_webhook_outbox_pending") == 0

        # A worker killed outright: replaced, its gauges dropped, its counts kept.
        victim = next(iter(served))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            gone = victim not in worker_pids(server.pid)
            if gone and not list(metrics_dir.glob(f"gauge_live*_{victim}.db")):
                try:
                    s = scrape(server)
                except (httpx.TransportError, AssertionError):
                    s = {}
                # The replacement has started: its pool and the survivor's, not the victim's.
                if value(s, "ladder_db_pool_connections_max") == 2 * (POOL_SIZE + MAX_OVERFLOW):
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"the killed worker's gauges stayed:\n{server.log_text()[-3000:]}")
        frameworks = total(s, "ladder_http_requests_total", route="/v1/frameworks", status="200")
        assert frameworks == fired
    finally:
        server.stop()

    # Every line the server wrote is JSON; each response's id is on its request line.
    log = server.log_text()
    records = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert any(rec["logger"].startswith("uvicorn") for rec in records)
    request_lines = {rec["request_id"]: rec for rec in records if rec["logger"] == "app.request"}
    for rid in request_ids:
        assert request_lines[rid]["route"] == "/v1/frameworks"
        assert request_lines[rid]["status"] == 200
    # The secret part can itself contain "_", so it is split by the key format's own parser.
    parsed = parse_token(api_key, DEFAULT_KEY_PREFIX)
    assert parsed is not None
    assert api_key not in log and parsed[1] not in log
    assert count_tracebacks(log) == 0
