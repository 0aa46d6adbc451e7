"""API read path: GET /v1/subjects/{ref}/score against a bare endpoint and a raw one-row read.

All are served the same way (uvicorn workers, same host, access log on) and loaded by the same wrk
(same threads and connections), round-robin over many subjects so no single cached row flatters
the score. Each subject has manager, peer and self assessments of all 14 competencies of the
built-in product-management ladder, and the default (explained) score response is what is read.
The score endpoint goes through the ordinary route (authentication, scopes, rate limit, the
tenant-bound transaction) and is measured three ways in one run:

- repeated reads of unchanged subjects (the default: each worker remembers rendered scores by
  their fingerprint, so a repeat costs one statement and no rendering; the memo is warmed first
  and the share of reads so answered is printed);
- conditional reads answered 304 (If-None-Match with each subject's current ETag);
- computed reads with SCORE_CACHE_MB=0 (every read scored and rendered).

Rounds alternate the endpoints, and the table shows each endpoint's median round.

Both servers keep ``--pool-size`` connections per worker open (the service with DB_POOL_SIZE and
DB_MAX_OVERFLOW=0), as the floor's asyncpg pool does.

With ``--baseline-ref REF`` the ``app/`` package of git commit REF (e.g. the commit before a
change) is served too, after this code's service stops (three services at once would hold more
connections than Postgres's default ``max_connections``), its memo warmed the same way, and its
repeated and 304 reads measured for the same rounds; the table ends with this code / REF.

    python bench/api_read.py [--subjects 1000] [--seconds 15] [--rounds 3] [--pool-size 20]
                             [--baseline-ref REF] [--quick]
"""

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.harness import (
    Population,
    Server,
    World,
    backend_pids,
    base_parser,
    builtin_framework,
    cpu_seconds,
    cpu_used,
    ensure_wrk,
    env_with_app_of,
    free_port,
    ladder_server,
    load_options,
    machine_note,
    median,
    now_utc,
    populated,
    quick_load,
    say,
    server_seconds,
    stop_on_sigterm,
    table,
    thousands,
    verdict,
    world,
)

LUA = Path(__file__).resolve().parent / "roundrobin.lua"
# (share of the floor's throughput, p99 in ms or None) by endpoint label below.
REPEATED = "GET .../score, repeated (memo)"
CONDITIONAL = "GET .../score, If-None-Match -> 304"
COMPUTED = "GET .../score, computed (SCORE_CACHE_MB=0)"
TARGETS: dict[str, tuple[float, float | None]] = {
    REPEATED: (0.75, 50.0),
    CONDITIONAL: (0.85, None),
    COMPUTED: (0.30, 100.0),
}


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One wrk run."""

    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    worker_cpu_ms: float = float("nan")  # per request, in the serving processes
    db_cpu_ms: float = float("nan")  # per request, in the Postgres backends of the bench db


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A measured endpoint: its label, server, path template, key and ids file."""

    label: str
    server: Server
    path: str  # with {id}
    token: str | None
    ids_file: Path
    expect: int = 200


def run_wrk(
    wrk: str, endpoint: Endpoint, seconds: int, connections: int, threads: int
) -> LoadResult:
    """Load one endpoint with wrk and read the script's result line."""
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        endpoint.server.url,
        "--",
        str(endpoint.ids_file),
        endpoint.path,
        endpoint.token or "",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(line.removeprefix("WRK_RESULT "))
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return LoadResult(
        requests=data["requests"],
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=errors,
    )


def measured_run(
    wrk: str, endpoint: Endpoint, args: argparse.Namespace, database: str
) -> LoadResult:
    """One measured wrk run, with the CPU the servers and the database spent per request."""
    workers = endpoint.server.worker_pids()
    cpu0 = cpu_seconds(workers)
    db0 = cpu_seconds(backend_pids(database))
    result = run_wrk(wrk, endpoint, args.seconds, args.connections, args.threads)
    thousandths = max(result.requests, 1) / 1000
    db1 = cpu_seconds([*db0, *backend_pids(database)])
    return replace(
        result,
        worker_cpu_ms=cpu_used(cpu0, cpu_seconds(workers)) / thousandths,
        db_cpu_ms=cpu_used(db0, db1) / thousandths,
    )


@dataclass(frozen=True, slots=True)
class Unloaded:
    """Latency of sequential requests on one connection: client wall and server time."""

    client_p50_ms: float
    server_p50_ms: float


def id_lines(endpoint: Endpoint) -> list[tuple[str, dict[str, str]]]:
    """Each id of the endpoint's file, with the If-None-Match header its line names (if any)."""
    out = []
    for line in endpoint.ids_file.read_text().splitlines():
        ref, _, etag = line.partition("\t")
        out.append((ref, {"If-None-Match": etag} if etag else {}))
    return out


def unloaded(endpoint: Endpoint, n: int) -> Unloaded:
    """Time ``n`` sequential requests on one keep-alive connection (after a few unmeasured)."""
    headers = {"Authorization": f"Bearer {endpoint.token}"} if endpoint.token else {}
    lines = id_lines(endpoint)
    walls: list[float] = []
    servers: list[float] = []
    with httpx.Client(base_url=endpoint.server.url, headers=headers, timeout=30) as client:
        for i in range(n + 20):
            ref, extra = lines[i % len(lines)]
            path = endpoint.path.replace("{id}", ref)
            started = time.perf_counter()
            response = client.get(path, headers=extra)
            wall = time.perf_counter() - started
            if response.status_code != endpoint.expect:
                raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text}")
            if i >= 20:
                walls.append(wall * 1000)
                servers.append(server_seconds(response) * 1000)
    return Unloaded(median(walls), median(servers))


def hit_ratio(endpoint: Endpoint, refs: list[str], n: int) -> float:
    """Share of ``n`` sequential reads the service answered from its memo of rendered scores."""
    headers = {"Authorization": f"Bearer {endpoint.token}"}
    hits = 0
    with httpx.Client(base_url=endpoint.server.url, headers=headers, timeout=30) as client:
        for i in range(n):
            response = client.get(endpoint.path.replace("{id}", refs[(i * 7) % len(refs)]))
            hits += 'memo;desc="hit"' in response.headers.get("server-timing", "")
    return hits / n


def warm(wrk: str, endpoint: Endpoint, refs: list[str], args: argparse.Namespace) -> float:
    """Read every subject until the service's per-worker memos hold them (or 12 passes)."""
    ratio = 0.0
    for _ in range(12):
        run_wrk(wrk, endpoint, max(args.warmup, 3), args.connections, args.threads)
        ratio = hit_ratio(endpoint, refs, 200)
        if ratio >= 0.95:
            break
    return ratio


def etags_file(endpoint: Endpoint, refs: list[str], path: Path) -> Path:
    """A file of ``ref<TAB>ETag`` lines: each subject's current ETag, read once."""
    headers = {"Authorization": f"Bearer {endpoint.token}"}
    lines = []
    with httpx.Client(base_url=endpoint.server.url, headers=headers, timeout=30) as client:
        for ref in refs:
            response = client.get(endpoint.path.replace("{id}", ref))
            if response.status_code != 200 or "etag" not in response.headers:
                raise RuntimeError(f"no ETag for {ref}: {response.status_code} {response.text}")
            lines.append(f"{ref}\t{response.headers['etag']}")
    path.write_text("\n".join(lines) + "\n")
    return path


def baseline_server(w: World, workers: int, pool_size: int) -> Server:
    """bench/baseline_app.py under uvicorn with the service's flags (not started yet)."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--workers",
        str(workers),
        "--log-level",
        "info",
        "--proxy-headers",
        "--timeout-graceful-shutdown",
        "20",
    ]
    env = {
        **w.env,
        "BASELINE_DATABASE_URL": w.db.app_url,
        "BASELINE_TENANT_ID": w.tenant_id,
        "BASELINE_POOL_SIZE": str(pool_size),
    }
    return Server("baseline", argv, env, w.workdir, workers)


def previous_endpoints(
    w: World, args: argparse.Namespace, env: dict[str, str], path: str, ids: Path, refs: list[str]
) -> list[Endpoint]:
    """The repeated and 304 reads served by ``app/`` of ``--baseline-ref`` (started; the 304
    reads send the ETags that code gives)."""
    ref = args.baseline_ref
    code = env_with_app_of(env, ref, w.workdir / "baseline-ref")
    server = ladder_server(code, w.workdir, args.workers, "service-baseline-ref").start()
    repeated = Endpoint(f"{REPEATED}, app/ of {ref}", server, path, w.token, ids)
    etags = etags_file(repeated, refs, w.workdir / "etags-baseline-ref.txt")
    conditional = Endpoint(f"{CONDITIONAL}, app/ of {ref}", server, path, w.token, etags, 304)
    return [repeated, conditional]


def fmt_ms(value: float) -> str:
    """Milliseconds with one decimal, or a dash."""
    return "-" if value != value else f"{value:.1f}"  # NaN: no Server-Timing header


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = base_parser(__doc__.splitlines()[0])
    load_options(parser, subjects=1000, seconds=15, warmup=5, rounds=3)
    parser.add_argument(
        "--pool-size",
        type=int,
        default=20,
        help="database connections each worker keeps open, service and floor alike (20)",
    )
    parser.add_argument(
        "--baseline-ref", help="git commit whose app/ is served too, for same-run ratios"
    )
    args = parser.parse_args(argv)
    quick_load(args)
    wrk = ensure_wrk()
    stop_on_sigterm()
    started = time.perf_counter()
    say(machine_note())
    with world(args) as w:
        population = Population(builtin_framework(), args.seed, now_utc())
        refs, ids_file = populated(w, population, args.subjects)

        # The floor's asyncpg pool keeps every connection it opened; SQLAlchemy's pool closes
        # those beyond DB_POOL_SIZE when they come back, so at 16 requests per worker the
        # default 10 + 10 opened and closed connections all the time. Both keep the same here.
        pool = {"DB_POOL_SIZE": str(args.pool_size), "DB_MAX_OVERFLOW": "0"}
        service_env = {**w.env, **pool}
        uncached_env = {**service_env, "SCORE_CACHE_MB": "0"}
        service = ladder_server(service_env, w.workdir, args.workers, "service")
        uncached = ladder_server(uncached_env, w.workdir, args.workers, "service-uncached")
        with service, uncached, baseline_server(w, args.workers, args.pool_size) as baseline:
            service.start()
            baseline.start(health_path="/bare")
            path = "/v1/subjects/{id}/score"
            etags = etags_file(
                Endpoint(REPEATED, service, path, w.token, ids_file), refs, w.workdir / "etags.txt"
            )
            endpoints = [
                Endpoint("bare JSON, no database", baseline, "/bare", None, ids_file),
                Endpoint(
                    "one-row read, raw asyncpg (floor)", baseline, "/row?id={id}", None, ids_file
                ),
                Endpoint(REPEATED, service, path, w.token, ids_file),
                Endpoint(CONDITIONAL, service, path, w.token, etags, expect=304),
                Endpoint(COMPUTED, uncached, path, w.token, ids_file),
            ]
            say("warming the memo (every subject read until 95% of reads hit) ...")
            warmed = warm(wrk, endpoints[2], refs, args)
            say(f"  {warmed:.0%} of sampled reads answered from memory")
            runs: dict[str, list[LoadResult]] = {e.label: [] for e in endpoints}
            quiet: dict[str, Unloaded] = {}
            hits: list[float] = []

            def measure(group: list[Endpoint]) -> None:
                say("unloaded latency (one connection, sequential) ...")
                quiet.update({e.label: unloaded(e, 50 if args.quick else 300) for e in group})
                for round_no in range(1, args.rounds + 1):
                    for e in group:
                        say(f"round {round_no}/{args.rounds}: {e.label} ...")
                        run_wrk(wrk, e, args.warmup, args.connections, args.threads)
                        result = measured_run(wrk, e, args, w.db.name)
                        if result.errors:
                            say(f"  WARNING: {result.errors} failed requests (see the server log)")
                        runs[e.label].append(result)
                        if e.label == REPEATED:
                            hits.append(hit_ratio(e, refs, 100))

            measure(endpoints[:4])
            # One service at a time: both at once could hold more connections than Postgres's
            # default max_connections allows next to the baselines.
            service.stop()
            if args.baseline_ref:
                earlier = previous_endpoints(w, args, service_env, path, ids_file, refs)
                with earlier[0].server:
                    say(f"warming the memo of app/ of {args.baseline_ref} ...")
                    warm(wrk, earlier[0], refs, args)
                    runs.update({e.label: [] for e in earlier})
                    endpoints += earlier
                    measure(earlier)
            uncached.start()
            measure(endpoints[4:5])

    def med(label: str, field: str) -> float:
        return median([getattr(r, field) for r in runs[label]])

    bare_l, floor_l = endpoints[0].label, endpoints[1].label
    rows = [
        [
            e.label,
            thousands(med(e.label, "rps")),
            fmt_ms(med(e.label, "p50_ms")),
            fmt_ms(med(e.label, "p90_ms")),
            fmt_ms(med(e.label, "p99_ms")),
            f"{med(e.label, 'worker_cpu_ms'):.2f}",
            f"{med(e.label, 'db_cpu_ms'):.2f}",
            fmt_ms(quiet[e.label].client_p50_ms),
            fmt_ms(quiet[e.label].server_p50_ms),
            thousands(sum(r.errors for r in runs[e.label])),
            " ".join(thousands(r.rps) for r in runs[e.label]),
        ]
        for e in endpoints
    ]
    say()
    say(
        f"API read path - {thousands(args.subjects)} subjects x 3 assessments (manager, peer, self)"
        f" x 14 competencies, product-management ladder, Postgres"
    )
    say(
        f"servers: ladder serve and uvicorn bench.baseline_app, {args.workers} workers each, "
        f"{args.pool_size} pooled connections per worker, access log on; service role: "
        f"{'superuser' if args.superuser else 'unprivileged (RLS on)'}"
    )
    say(
        f"load: wrk -t{args.threads} -c{args.connections}, {args.seconds} s per run after "
        f"{args.warmup} s warm-up, {args.rounds} round(s), median of the rounds shown; refs round-robin"
    )
    say()
    say(
        table(
            [
                "endpoint",
                "req/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "app CPU ms",
                "db CPU ms",
                "1-conn ms",
                "server ms",
                "errors",
                "req/s per round",
            ],
            rows,
        )
    )
    say(
        "(app/db CPU: CPU time per request of the serving processes / of the database's Postgres"
        " backends during the measured run; 1-conn: median latency of sequential requests on one"
        " connection, and its Server-Timing)"
    )
    say()
    say(
        table(
            ["score read", "of the floor", "of bare JSON", "p99 ms", "app CPU/request vs floor"],
            [
                [
                    label,
                    f"{med(label, 'rps') / med(floor_l, 'rps'):.0%}",
                    f"{med(label, 'rps') / med(bare_l, 'rps'):.0%}",
                    fmt_ms(med(label, "p99_ms")),
                    f"{med(label, 'worker_cpu_ms') / med(floor_l, 'worker_cpu_ms'):.1f}x",
                ]
                for label in TARGETS
            ],
        )
    )
    say(
        "(repeated: answered from the worker's memo after one statement; sampled share of reads"
        " so answered after each run: "
        + ", ".join(f"{h:.0%}" for h in hits)
        + ". 304: If-None-Match with the subject's current ETag. Computed: every read scored and"
        " rendered.)"
    )
    say()
    say("targets (same run)")
    for label, (share_target, p99_target) in TARGETS.items():
        share = med(label, "rps") / med(floor_l, "rps")
        p99 = med(label, "p99_ms")
        line = f"  {label}: {share:.0%} of the floor (>= {share_target:.0%}) {verdict(share >= share_target)}"
        if p99_target is not None:
            line += f"; p99 {p99:.1f} ms (<= {p99_target:.0f}) {verdict(p99 <= p99_target)}"
        say(line)
    if args.baseline_ref:
        say()
        say(f"this code / app/ of {args.baseline_ref} (measured after this code, same rounds)")
        for label in (REPEATED, CONDITIONAL):
            then = f"{label}, app/ of {args.baseline_ref}"
            say(
                f"  {label}: req/s {med(label, 'rps') / med(then, 'rps'):.2f}x, worker CPU "
                f"per request {med(label, 'worker_cpu_ms') / med(then, 'worker_cpu_ms'):.2f}x"
            )
    say(machine_note())
    say(f"total run time {time.perf_counter() - started:.0f} s")
    failed = sum(r.errors for results in runs.values() for r in results)
    if failed:
        say(f"{failed} requests failed under load (errors column): the numbers are not valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
