"""Fault test: Postgres dies while a webhook receiver is answering (issue 12 item 14).

A real ``ladder serve`` (its dispatcher running inside) delivers to a receiver on loopback; the
receiver kills the private cluster's postmaster (SIGKILL) before it answers, and the cluster
comes back a few seconds later through crash recovery. Recording the outcome therefore fails.
The delivery log must never show fewer attempts than the receiver saw, the outcome must be
recorded once the database is back, and the delivered event must not be sent again.
"""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.test_webhooks import Receiver
from tests.fault.appserver import AppServer, app_env, count_tracebacks, run_ladder
from tests.fault.pgcluster import PgCluster, missing_binaries

pytestmark = pytest.mark.fault

DOWN_SECONDS = 3.0
SETTLE_SECONDS = 30.0


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PgCluster, Any, str]]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Postgres binaries not found: {', '.join(missing)} (set FAULT_PG_BIN)")
    pg = PgCluster()
    try:
        pg.init()
        pg.start()
        workdir = tmp_path_factory.mktemp("fault-webhooks")
        env = app_env(pg.url)
        run_ladder(workdir, env, "migrate")
        key = run_ladder(workdir, env, "create-tenant", "hooks").strip().splitlines()[-1]
        yield pg, workdir, key
    finally:
        pg.stop()
        pg.remove()


def _wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except httpx.TransportError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_an_attempt_answered_while_postgres_is_down_is_recorded_once_it_is_back(
    cluster: tuple[PgCluster, Any, str],
) -> None:
    pg, workdir, key = cluster
    server = AppServer(
        workdir,
        app_env(
            pg.url,
            WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
            WEBHOOK_POLL_SECONDS="0.2",
            DB_STATEMENT_TIMEOUT_MS="2000",
            DB_POOL_TIMEOUT_SECONDS="2",
            DB_CONNECT_TIMEOUT_SECONDS="2",
        ),
        workdir / "server.log",
    )
    restarted = threading.Event()

    def crash_and_recover() -> None:
        pg.kill_hard()

        def later() -> None:
            time.sleep(DOWN_SECONDS)
            pg.start_after_crash()
            restarted.set()

        threading.Thread(target=later, daemon=True).start()

    headers = {"Authorization": f"Bearer {key}"}
    with Receiver() as receiver:
        server.start()
        try:
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as api:
                r = api.post(
                    "/v1/webhooks", json={"url": receiver.url, "events": ["assessment.created"]}
                )
                assert r.status_code == 201, r.text
                hook = r.json()["id"]
                assert api.post("/v1/subjects", json={"external_ref": "emp-1"}).status_code == 201
                receiver.on_post = crash_and_recover
                r = api.post(
                    "/v1/assessments",
                    json={
                        "subject_ref": "emp-1",
                        "framework": {"key": "product-management"},
                        "rater_ref": "m1",
                        "rater_role": "manager",
                        "assessed_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                        "ratings": [{"competency": "execution", "proficiency": 3}],
                    },
                )
                assert r.status_code == 201, r.text
                _wait_for("the receiver to be sent the event", lambda: receiver.received, 20)
                receiver.on_post = None
                assert restarted.wait(30), pg.log_tail()

                def recorded() -> dict[str, Any] | None:
                    r = api.get(f"/v1/webhooks/{hook}/deliveries")
                    if r.status_code != 200:
                        return None
                    [delivery] = r.json()["items"]
                    # Whenever the log can be read, it counts every attempt the receiver saw.
                    assert delivery["attempts"] >= len(receiver.received), delivery
                    return delivery if delivery["status"] != "pending" else None

                delivery = _wait_for("the outcome to be recorded", recorded, SETTLE_SECONDS)
                assert (delivery["status"], delivery["last_status_code"]) == ("delivered", 200)
                assert delivery["attempts"] == len(receiver.received) == 1
                time.sleep(2)  # a few more dispatcher rounds: nothing is sent again
                assert len(receiver.received) == 1
        finally:
            server.stop()
    log = server.log_text()
    assert "webhook dispatch paused: database unavailable" in log
    assert count_tracebacks(log) == 0, log[-4000:]
