"""Cost of metrics and request logging on the score read: the same server with them on and off.

Two ``ladder serve`` servers on the same bench database, same workers and pool: one as shipped
(Prometheus series, one JSON log line per request), one with ``METRICS_ENABLED=false`` and
``LOG_REQUESTS=false``. Both serve repeated ``GET /v1/subjects/{ref}/score`` (memo warmed first),
loaded by the same wrk round-robin over many subjects; rounds alternate the two servers and the
table shows each one's median round. Target (issue 16): the observed server keeps at least 90%
of the other's throughput.

    python bench/observability.py [--subjects 500] [--seconds 10] [--rounds 3] [--quick]
"""

import secrets
import sys
import time

import httpx

from bench.api_read import Endpoint, LoadResult, measured_run, run_wrk
from bench.harness import (
    Population,
    base_parser,
    builtin_framework,
    ensure_wrk,
    ladder_server,
    load_options,
    machine_note,
    median,
    now_utc,
    populated,
    quick_load,
    say,
    stop_on_sigterm,
    table,
    thousands,
    verdict,
    world,
)

TARGET_SHARE = 0.90
METRICS_TOKEN = secrets.token_urlsafe(24)
SCORE_PATH = "/v1/subjects/{id}/score"
ON = "metrics + JSON request log (as shipped)"
OFF = "metrics and request log off"


def scraped_score_reads(url: str) -> float:
    """Score reads the observed server has counted, summed over its workers."""
    r = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30
    )
    r.raise_for_status()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in r.text.splitlines()
        if line.startswith("ladder_http_requests_total{")
        and 'route="/v1/subjects/{ref}/score"' in line
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = base_parser(__doc__.splitlines()[0])
    load_options(parser, subjects=500, seconds=10, warmup=3, rounds=3)
    args = parser.parse_args(argv)
    quick_load(args)
    wrk = ensure_wrk()
    stop_on_sigterm()
    started = time.perf_counter()
    say(machine_note())
    with world(args) as w:
        population = Population(builtin_framework(), args.seed, now_utc())
        _, ids_file = populated(w, population, args.subjects)
        # The same pool for both, and no overflow: both servers together stay well inside
        # Postgres's default max_connections.
        common = {**w.env, "DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "0", "LOG_FORMAT": "json"}
        on_env = {**common, "METRICS_TOKEN": METRICS_TOKEN}
        off_env = {**common, "METRICS_ENABLED": "false", "LOG_REQUESTS": "false"}
        observed = ladder_server(on_env, w.workdir, args.workers, "observed")
        plain = ladder_server(off_env, w.workdir, args.workers, "plain")
        with observed, plain:
            observed.start()
            plain.start()
            endpoints = [
                Endpoint(ON, observed, SCORE_PATH, w.token, ids_file),
                Endpoint(OFF, plain, SCORE_PATH, w.token, ids_file),
            ]
            say("warming both servers' memos ...")
            for e in endpoints:
                run_wrk(wrk, e, max(args.warmup, 3), args.connections, args.threads)
            counted_before = scraped_score_reads(observed.url)
            runs: dict[str, list[LoadResult]] = {e.label: [] for e in endpoints}
            for round_no in range(1, args.rounds + 1):
                # Alternate which goes first, so neither always follows the other's load.
                order = endpoints if round_no % 2 else endpoints[::-1]
                for e in order:
                    say(f"round {round_no}/{args.rounds}: {e.label} ...")
                    run_wrk(wrk, e, args.warmup, args.connections, args.threads)
                    result = measured_run(wrk, e, args, w.db.name)
                    if result.errors:
                        say(f"  WARNING: {result.errors} failed requests (see the server log)")
                    runs[e.label].append(result)
            counted = scraped_score_reads(observed.url) - counted_before
            sent = sum(r.requests for r in runs[ON])
            log_lines = sum(
                1
                for line in observed.log_path.read_text(errors="replace").splitlines()
                if '"logger": "app.request"' in line
            )

    def med(label: str, field: str) -> float:
        return median([getattr(r, field) for r in runs[label]])

    say()
    say(
        f"Score read with and without metrics and request logging - {thousands(args.subjects)}"
        f" subjects, repeated reads (memo warm), Postgres, {args.workers} workers each,"
        f" wrk -t{args.threads} -c{args.connections}, {args.seconds} s per run,"
        f" {args.rounds} round(s), median shown"
    )
    say()
    say(
        table(
            ["server", "req/s", "p50 ms", "p99 ms", "app CPU ms", "req/s per round"],
            [
                [
                    label,
                    thousands(med(label, "rps")),
                    f"{med(label, 'p50_ms'):.1f}",
                    f"{med(label, 'p99_ms'):.1f}",
                    f"{med(label, 'worker_cpu_ms'):.3f}",
                    " ".join(thousands(r.rps) for r in runs[label]),
                ]
                for label in (ON, OFF)
            ],
        )
    )
    share = med(ON, "rps") / med(OFF, "rps")
    cpu_extra = med(ON, "worker_cpu_ms") - med(OFF, "worker_cpu_ms")
    say()
    say(f"throughput with metrics and logging: {share:.1%} of without (overhead {1 - share:.1%})")
    say(f"extra app CPU per request: {cpu_extra * 1000:.0f} us")
    say(
        f"check: the observed server counted {thousands(counted)} score reads in /metrics while"
        f" wrk completed {thousands(sent)} in its measured runs (warm-ups add"
        f" {thousands(counted - sent)}); its log holds {thousands(log_lines)} request lines"
    )
    say(f"target: >= {TARGET_SHARE:.0%} of the throughput {verdict(share >= TARGET_SHARE)}")
    say(f"({time.perf_counter() - started:.0f} s; {machine_note()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
