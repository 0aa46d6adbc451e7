"""Fault test: concurrent writers with idempotency keys while the database restarts and crashes.

A real uvicorn server (``ladder serve``) runs on loopback against a throwaway Postgres cluster of
the test's own (initdb/pg_ctl into a temporary folder, on a free port; never the machine's
shared server). Writers post assessments, each logical write with its own ``Idempotency-Key``,
and retry 409, 503 and connection errors with the same key. In the middle the cluster is
restarted (``pg_ctl restart -m fast``) and later its postmaster is killed with SIGKILL and
started again (crash recovery). While it is down: ``/healthz`` 200, ``/readyz`` 503, API calls
503 problem+json with Retry-After, quickly. At the end, without restarting the server, it is
ready again and every acknowledged assessment is in the database exactly once.

Also: SIGTERM lets an in-flight request finish (graceful shutdown).

Run with ``pytest -m fault tests/fault -s`` to see the counts.
"""

import asyncio
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.fault.appserver import AppServer, count_500s, count_tracebacks, server_errors
from tests.fault.conftest import SUBJECT_REF, TENANT_SLUG, Cluster

pytestmark = pytest.mark.fault

PROBLEM_JSON = "application/problem+json"

WRITERS = 4
SCORE_READERS = 2
RUN_SECONDS = 13.0  # writers start new logical writes for this long
RESTART_AT = 3.0  # pg_ctl restart -m fast
KILL_AT = 6.5  # SIGKILL of the postmaster
DOWN_AT_LEAST = 2.5  # seconds the cluster stays down after the kill
WRITE_DEADLINE = 20.0  # a logical write gives up (unacknowledged) after this long
CLIENT_TIMEOUT = 5.0
RETRY_AFTER_CAP = 0.5  # honour Retry-After, but at most this long (test speed)
HANG_LIMIT = 10.0  # an answer slower than this while the database is down is a hang
ALLOWED_STATUSES = {200, 201, 409, 503}

FAULT_SETTINGS = {
    "DB_STATEMENT_TIMEOUT_MS": "2000",
    "DB_POOL_TIMEOUT_SECONDS": "2",
    "DB_CONNECT_TIMEOUT_SECONDS": "2",
}


def assessment_body(rater_ref: str) -> dict[str, Any]:
    return {
        "subject_ref": SUBJECT_REF,
        "framework": {"key": "product-management"},
        "rater_ref": rater_ref,
        "rater_role": "peer",
        "assessed_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "ratings": [
            {"competency": "execution", "proficiency": 3},
            {"competency": "communication", "proficiency": 2},
        ],
    }


def ensure_subject(base_url: str, headers: dict[str, str]) -> None:
    r = httpx.post(
        base_url + "/v1/subjects", json={"external_ref": SUBJECT_REF}, headers=headers, timeout=10
    )
    assert r.status_code in (201, 409), r.text


@dataclass
class Ack:
    key: str
    body: dict[str, Any]
    status: int
    response: Any
    attempts: int


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    acknowledged: int = 0
    retried: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    reads: Counter[int] = field(default_factory=Counter)  # score reads by status
    transport_errors: Counter[str] = field(default_factory=Counter)
    acks: dict[str, Ack] = field(default_factory=dict)
    sent_refs: set[str] = field(default_factory=set)
    unacknowledged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # protocol violations seen by writers
    slowest: float = 0.0


def retry_delay(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "0.1")), RETRY_AFTER_CAP)
    except ValueError:
        return 0.1


def check_503(response: httpx.Response, what: str) -> list[str]:
    """What a 503 gets wrong: it must be problem+json and carry Retry-After."""
    out = []
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        out.append(f"{what}: 503 with content-type {response.headers.get('content-type')!r}")
    if "retry-after" not in response.headers:
        out.append(f"{what}: 503 without Retry-After")
    return out


def writer(
    n: int, base_url: str, headers: dict[str, str], run_id: str, stop_at: float, stats: Stats
) -> None:
    """Logical writes until ``stop_at``; each retried with its key until 2xx or its deadline."""
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=CLIENT_TIMEOUT) as client:
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                ref = f"w{n}-{i}"
                key = f"{run_id}-{ref}"
                body = assessment_body(ref)
                with stats.lock:
                    stats.sent += 1
                    stats.sent_refs.add(ref)
                deadline = time.monotonic() + WRITE_DEADLINE
                attempts = 0
                while True:
                    attempts += 1
                    if attempts > 1:
                        with stats.lock:
                            stats.retried += 1
                    began = time.monotonic()
                    try:
                        r = client.post(
                            "/v1/assessments", json=body, headers={"Idempotency-Key": key}
                        )
                    except httpx.TransportError as exc:
                        with stats.lock:
                            stats.transport_errors[type(exc).__name__] += 1
                        delay = 0.2
                    else:
                        elapsed = time.monotonic() - began
                        with stats.lock:
                            stats.statuses[r.status_code] += 1
                            stats.slowest = max(stats.slowest, elapsed)
                        if r.is_success:
                            with stats.lock:
                                stats.acknowledged += 1
                                stats.acks[ref] = Ack(key, body, r.status_code, r.json(), attempts)
                            break
                        if r.status_code not in ALLOWED_STATUSES:
                            with stats.lock:
                                stats.problems.append(
                                    f"{ref}: unexpected {r.status_code} {r.text[:300]}"
                                )
                            break
                        if r.status_code == 503:
                            bad = check_503(r, ref)
                            if bad:
                                with stats.lock:
                                    stats.problems.extend(bad)
                        delay = retry_delay(r)
                    if time.monotonic() + delay > deadline:
                        with stats.lock:
                            stats.unacknowledged.append(ref)
                        break
                    time.sleep(delay)
    except Exception as exc:  # a crash in the harness must show, not vanish with the thread
        with stats.lock:
            stats.problems.append(f"writer {n} crashed: {exc!r}")


def score_reader(base_url: str, headers: dict[str, str], stop_at: float, stats: Stats) -> None:
    """Repeated score reads (the ordinary route, memo on) through the restarts: each
    answers 200 or 503 (the subject has an assessment once the writers' first one is stored)."""
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=CLIENT_TIMEOUT) as client:
            while time.monotonic() < stop_at:
                try:
                    r = client.get(f"/v1/subjects/{SUBJECT_REF}/score")
                except httpx.TransportError as exc:
                    with stats.lock:
                        stats.transport_errors[f"read {type(exc).__name__}"] += 1
                    time.sleep(0.2)
                    continue
                with stats.lock:
                    stats.reads[r.status_code] += 1
                    if r.status_code not in (200, 404, 422, 503):
                        stats.problems.append(f"score read: {r.status_code} {r.text[:300]}")
                    elif r.status_code == 503:
                        stats.problems.extend(check_503(r, "score read"))
                time.sleep(0.05 if r.status_code == 200 else retry_delay(r))
    except Exception as exc:
        with stats.lock:
            stats.problems.append(f"score reader crashed: {exc!r}")


def probe_while_down(base_url: str, headers: dict[str, str]) -> list[str]:
    """The contract while Postgres is down: liveness up, readiness and API calls 503, fast."""
    out = []
    with httpx.Client(base_url=base_url, timeout=HANG_LIMIT + 5) as client:
        r = client.get("/healthz")
        if r.status_code != 200:
            out.append(f"/healthz while the database is down: {r.status_code}")
        began = time.monotonic()
        r = client.get("/readyz")
        if r.status_code != 503:
            out.append(f"/readyz while the database is down: {r.status_code} {r.text[:200]}")
        if time.monotonic() - began > HANG_LIMIT:
            out.append(f"/readyz took {time.monotonic() - began:.1f}s while the database is down")
        probes: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/v1/subjects", {}),
            ("POST", "/v1/assessments", {"json": assessment_body("down-probe")}),
        ]
        for method, path, kwargs in probes:
            began = time.monotonic()
            try:
                r = client.request(method, path, headers=headers, **kwargs)
            except httpx.TimeoutException:
                out.append(f"{method} {path} while the database is down: no answer (hang)")
                continue
            took = time.monotonic() - began
            if r.status_code != 503:
                out.append(
                    f"{method} {path} while the database is down: {r.status_code} {r.text[:300]}"
                )
            else:
                out.extend(check_503(r, f"{method} {path}"))
            if took > HANG_LIMIT:
                out.append(f"{method} {path} took {took:.1f}s while the database is down")
    return out


async def stored_assessments(url: str) -> dict[str, list[tuple[uuid.UUID, int]]]:
    """rater_ref -> [(assessment id, its number of ratings)] for the test's subject."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch(
            """
            SELECT a.rater_ref, a.id,
                   (SELECT count(*) FROM rating r
                     WHERE r.tenant_id = a.tenant_id AND r.assessment_id = a.id) AS ratings
              FROM assessment a
              JOIN subject s ON s.tenant_id = a.tenant_id AND s.id = a.subject_id
              JOIN tenant t ON t.id = a.tenant_id
             WHERE t.slug = $1 AND s.external_ref = $2
            """,
            TENANT_SLUG,
            SUBJECT_REF,
        )
    finally:
        await conn.close()
    out: dict[str, list[tuple[uuid.UUID, int]]] = {}
    for row in rows:
        out.setdefault(row["rater_ref"], []).append((row["id"], row["ratings"]))
    return out


def wait_ready(base_url: str, timeout: float) -> float | None:
    """Seconds until /readyz answers 200, or None."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if httpx.get(base_url + "/readyz", timeout=3).status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return None


def test_writers_survive_restart_and_crash(cluster: Cluster, server_factory: Any) -> None:
    server: AppServer = server_factory("server-restart", **FAULT_SETTINGS)
    ensure_subject(server.base_url, cluster.headers)
    failures: list[str] = []
    events: list[str] = []
    stats = Stats()
    run_id = uuid.uuid4().hex[:12]

    began = time.monotonic()
    stop_at = began + RUN_SECONDS
    threads = [
        threading.Thread(
            target=writer,
            args=(n, server.base_url, cluster.headers, run_id, stop_at, stats),
            name=f"writer-{n}",
            daemon=True,
        )
        for n in range(WRITERS)
    ]
    threads += [
        threading.Thread(
            target=score_reader,
            args=(server.base_url, cluster.headers, stop_at, stats),
            name=f"score-reader-{n}",
            daemon=True,
        )
        for n in range(SCORE_READERS)
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(max(0.0, began + RESTART_AT - time.monotonic()))
        t0 = time.monotonic()
        cluster.pg.restart_fast()
        events.append(f"restart -m fast at {t0 - began:.1f}s took {time.monotonic() - t0:.2f}s")

        time.sleep(max(0.0, began + KILL_AT - time.monotonic()))
        t0 = time.monotonic()
        cluster.pg.kill_hard()
        events.append(f"SIGKILL of the postmaster at {t0 - began:.1f}s")
        failures.extend(probe_while_down(server.base_url, cluster.headers))
        time.sleep(max(0.0, t0 + DOWN_AT_LEAST - time.monotonic()))
        t1 = time.monotonic()
        attempts = cluster.pg.start_after_crash()
        events.append(
            f"down {t1 - t0:.1f}s; start after crash took {time.monotonic() - t1:.2f}s "
            f"({attempts} attempt(s))"
        )
    finally:
        for t in threads:
            t.join(RUN_SECONDS + WRITE_DEADLINE + 30)
    if any(t.is_alive() for t in threads):
        failures.append("a writer or reader thread did not finish")
    if not stats.reads[200]:
        failures.append(f"no score read answered 200: {dict(stats.reads)}")

    # The service recovers by itself: same process, ready again without a restart.
    if not server.alive():
        failures.append("the server process died during the run")
    recovered = wait_ready(server.base_url, 10)
    if recovered is None:
        failures.append("/readyz did not answer 200 within 10 s after the database came back")
    else:
        events.append(f"/readyz 200 again {recovered:.2f}s after the writers stopped")

    # Every acknowledged write exactly once; nothing duplicated, nothing half-written.
    stored = asyncio.run(stored_assessments(cluster.pg.url))
    found = sum(len(v) for v in stored.values())
    lost = sorted(ref for ref in stats.acks if ref not in stored)
    duplicated = {ref: len(v) for ref, v in stored.items() if len(v) > 1}
    partial = sorted(ref for ref, v in stored.items() if any(n != 2 for _, n in v))
    strays = sorted(
        ref
        for ref in set(stored) - stats.sent_refs - {"down-probe"}
        if not ref.startswith("sigterm-in-flight")
    )
    mismatched = sorted(
        ref
        for ref, ack in stats.acks.items()
        if ref in stored
        and len(stored[ref]) == 1
        and str(stored[ref][0][0]) != str(ack.response.get("id"))
    )
    unacked_stored = sum(1 for ref in stats.unacknowledged if ref in stored)
    if "down-probe" in stored:
        failures.append("the POST answered 503 while the database was down is stored")
    if lost:
        failures.append(f"{len(lost)} acknowledged assessment(s) lost, e.g. {lost[:5]}")
    if duplicated:
        failures.append(
            f"{len(duplicated)} logical write(s) stored more than once, "
            f"e.g. {dict(list(duplicated.items())[:5])}"
        )
    if partial:
        failures.append(f"{len(partial)} assessment(s) without exactly 2 ratings: {partial[:5]}")
    if strays:
        failures.append(f"assessments no writer sent: {strays[:5]}")
    if mismatched:
        failures.append(
            f"{len(mismatched)} acknowledged id(s) differ from the stored one: {mismatched[:5]}"
        )

    # A replay of a completed request answers identically and creates nothing.
    replayed = list(stats.acks.items())[:10]
    with httpx.Client(
        base_url=server.base_url, headers=cluster.headers, timeout=CLIENT_TIMEOUT
    ) as client:
        for ref, ack in replayed:
            r = client.post("/v1/assessments", json=ack.body, headers={"Idempotency-Key": ack.key})
            if r.status_code != ack.status or r.json() != ack.response:
                failures.append(
                    f"replay of {ref} answered {r.status_code} {r.text[:200]} "
                    f"instead of the original {ack.status} (id {ack.response.get('id')})"
                )
                break
    after_replay = asyncio.run(stored_assessments(cluster.pg.url))
    replay_dups = [ref for ref, _ in replayed if len(after_replay.get(ref, [])) > 1]
    if replay_dups:
        failures.append(f"replays stored new assessments for {replay_dups[:5]}")

    failures.extend(stats.problems[:20])
    log = server.log_text()
    tracebacks, five_hundreds = count_tracebacks(log), count_500s(log)
    if tracebacks or five_hundreds:
        failures.append(
            f"server log: {tracebacks} traceback(s), {five_hundreds} response(s) with 500; "
            f"first ones:\n" + "\n---\n".join(server_errors(log))
        )

    print(
        f"\n[fault] sent={stats.sent} acknowledged={stats.acknowledged} "
        f"retried={stats.retried} found={found}"
        f"\n[fault] statuses={dict(sorted(stats.statuses.items()))} "
        f"score_reads={dict(sorted(stats.reads.items()))} "
        f"transport_errors={dict(stats.transport_errors)} "
        f"unacknowledged={len(stats.unacknowledged)} (stored: {unacked_stored}) "
        f"slowest_answer={stats.slowest:.2f}s"
        f"\n[fault] " + "\n[fault] ".join(events) + f"\n[fault] server log: {server.log_path}"
    )
    assert stats.sent > 0 and stats.acknowledged > 0, "no write was acknowledged at all"
    assert not failures, "\n".join(failures)


def connection_refused(port: int) -> bool:
    """True when a new TCP connection is refused outright. One the kernel accepts on a socket
    nobody serves any more (and resets later) is not refused, nor is one that times out."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_in_flight_request(
    cluster: Cluster, server_factory: Any, workers: int
) -> None:
    """SIGTERM while a request waits on a table lock: the request still completes with 201,
    and new connections are refused meanwhile (with several workers too, where uvicorn's
    parent process holds the listening socket)."""
    server: AppServer = server_factory(
        f"server-sigterm-{workers}", workers=workers, DB_STATEMENT_TIMEOUT_MS="15000"
    )
    ensure_subject(server.base_url, cluster.headers)
    result: dict[str, Any] = {}

    def post() -> None:
        try:
            result["response"] = httpx.post(
                server.base_url + "/v1/assessments",
                json=assessment_body(f"sigterm-in-flight-{workers}"),
                headers={**cluster.headers, "Idempotency-Key": f"sigterm-{uuid.uuid4().hex}"},
                timeout=30,
            )
        except Exception as exc:
            result["error"] = exc

    async def scenario() -> tuple[bool, bool, int | None]:
        thread = threading.Thread(target=post, name="in-flight", daemon=True)
        lock = await asyncpg.connect(cluster.pg.url, timeout=10)
        try:
            tx = lock.transaction()
            await tx.start()
            await lock.execute("LOCK TABLE assessment IN ACCESS EXCLUSIVE MODE")
            thread.start()
            # The request is in flight once the server's session waits for our lock.
            waiting = False
            for _ in range(100):
                waiting = bool(
                    await lock.fetchval(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'competency-ladder' AND wait_event_type = 'Lock'"
                    )
                )
                if waiting or not thread.is_alive():
                    break
                await asyncio.sleep(0.1)
            server.terminate()
            await asyncio.sleep(1.0)
            draining = server.alive()
            refused = await asyncio.to_thread(connection_refused, server.port)
            await tx.rollback()  # release the lock: the in-flight request can finish
        finally:
            await lock.close()
        await asyncio.to_thread(thread.join, 30)
        code = await asyncio.to_thread(server.wait, 30)
        assert waiting, f"the request never waited on the lock: {result}"
        return draining, refused, code

    draining, refused, exit_code = asyncio.run(scenario())
    print(
        f"\n[fault] SIGTERM: draining={draining} new_connections_refused={refused} "
        f"in_flight={getattr(result.get('response'), 'status_code', result.get('error'))} "
        f"exit_code={exit_code}"
    )
    assert draining, "the server exited at once instead of draining the in-flight request"
    assert "error" not in result, f"the in-flight request failed: {result['error']!r}"
    assert result["response"].status_code == 201, result["response"].text
    # uvicorn re-raises the SIGTERM it captured once it has shut down, hence -SIGTERM.
    assert exit_code in (0, -signal.SIGTERM), f"the server did not exit after draining: {exit_code}"
    log = server.log_text()
    assert "Application shutdown complete" in log, log[-2000:]
    assert count_tracebacks(log) == 0, "\n".join(server_errors(log))
    assert refused, "the server still accepted new connections after SIGTERM"
    stored = asyncio.run(stored_assessments(cluster.pg.url))
    assert len(stored.get(f"sigterm-in-flight-{workers}", [])) == 1
