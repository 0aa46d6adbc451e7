"""What rate limiting costs per request: shared across workers (Postgres) vs in-process vs off.

Two measurements in one run, against one private bench database:

1. Over HTTP: ``ladder serve --workers 2`` loaded by wrk on ``GET /v1/subjects?limit=1`` (one
   key), once with rate limiting off, once with the shared limiter at its default lease, and
   once with a lease of one token (every request asks Postgres: the cost for a small limit).
   The limit is set high enough that nothing is refused, so every run does the same work
   besides the limiter. The three servers run side by side and are loaded in turns, round by
   round; each one's median round is compared with the one without limiting.
2. In this process: the time of one ``check`` call of the in-process limiter (what SQLite and
   the fallback use) and of the shared limiter with both leases, over the same database, with
   the trips to Postgres per check counted.

    python bench/ratelimit.py [--seconds 10] [--connections 32] [--quick]
"""

import argparse
import asyncio
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Any

from app.auth.ratelimit import Limiter, PostgresBucketStore, RateLimiter, SharedRateLimiter
from app.config import Settings
from bench.harness import (
    World,
    base_parser,
    ensure_wrk,
    ladder_server,
    machine_note,
    say,
    stop_on_sigterm,
    table,
    thousands,
    world,
)

DEFAULT_LEASE_TOKENS = int(Settings.model_fields["rate_limit_lease_tokens"].default)
PATH = "/v1/subjects?limit=1"  # an authenticated read of one indexed page (an empty tenant)
HIGH_LIMIT = "1000000"  # per minute: nothing is refused, the limiter still does all its work


@dataclass(frozen=True, slots=True)
class HttpRun:
    label: str
    rps: float
    p99_ms: float
    non_2xx: int


def _wrk(wrk: str, url: str, token: str, args: argparse.Namespace) -> tuple[float, float, int]:
    """(requests/s, p99 ms, non-2xx responses) of one wrk run."""
    argv = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
        f"{url}{PATH}",
    ]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=args.seconds + 120, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p99_ms, int(bad.group(1)) if bad else 0


def http_runs(w: World, wrk: str, args: argparse.Namespace) -> list[HttpRun]:
    """Start the three servers at once, then take turns loading them, round by round, so the
    machine's other work falls on all three alike; the median round of each is kept."""
    shared = {"RATE_LIMIT_PER_MINUTE": HIGH_LIMIT}
    configs = {
        "off": {"RATE_LIMIT_PER_MINUTE": "0"},
        f"shared (lease {DEFAULT_LEASE_TOKENS})": shared,
        "shared (lease 1)": {**shared, "RATE_LIMIT_LEASE_TOKENS": "1"},
    }
    servers = [
        ladder_server({**w.env, **env}, w.workdir, 2, f"server-{i}")
        for i, env in enumerate(configs.values())
    ]
    results: list[list[tuple[float, float, int]]] = [[] for _ in servers]
    try:
        for server in servers:
            server.start()
            _wrk(wrk, server.url, w.token, argparse.Namespace(**{**vars(args), "seconds": 2}))
        for round_ in range(args.rounds):
            say(f"round {round_ + 1} of {args.rounds}")
            for i, server in enumerate(servers):
                results[i].append(_wrk(wrk, server.url, w.token, args))
    finally:
        for server in servers:
            server.stop()
    runs = []
    for label, rounds in zip(configs, results, strict=True):
        rps, p99_ms, _ = sorted(rounds)[len(rounds) // 2]
        runs.append(HttpRun(label, rps, p99_ms, sum(bad for _, _, bad in rounds)))
    return runs


class CountingStore(PostgresBucketStore):
    """The Postgres store, counting its trips."""

    trips = 0

    async def lease(self, *args: Any, **kwargs: Any) -> tuple[int, float]:
        self.trips += 1
        return await super().lease(*args, **kwargs)


async def _per_call(limiter: Limiter, calls: int) -> float:
    """Microseconds per check (after a first one that connects)."""
    tenant, key = uuid.uuid4(), uuid.uuid4()
    await limiter.check(tenant, key)
    started = time.perf_counter()
    for _ in range(calls):
        await limiter.check(tenant, key)
    elapsed = time.perf_counter() - started
    await limiter.aclose()
    return elapsed / calls * 1e6


def in_process_costs(w: World, quick: bool) -> list[tuple[str, float, float]]:
    """(limiter, microseconds per check, Postgres trips per check), in this process."""
    calls = 2_000 if quick else 20_000
    limit = int(HIGH_LIMIT)
    rows = [("in-process", asyncio.run(_per_call(RateLimiter(limit), calls)), 0.0)]
    for lease, n in ((DEFAULT_LEASE_TOKENS, calls), (1, calls // 4)):
        store = CountingStore(w.db.app_url, timeout_seconds=5)
        limiter = SharedRateLimiter(store, per_minute=limit, max_lease=lease)
        us = asyncio.run(_per_call(limiter, n))
        rows.append((f"shared, lease {lease}", us, (store.trips - 1) / n))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "rate limit bench")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="wrk runs per server, in turns")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 2, 3
    stop_on_sigterm()
    wrk = ensure_wrk()
    say(machine_note())
    with world(args) as w:
        runs = http_runs(w, wrk, args)
        calls = in_process_costs(w, args.quick)
    base = runs[0].rps
    say()
    say(
        f"GET {PATH}, 2 workers, wrk -c{args.connections} -t{args.threads} "
        f"-d{args.seconds}s, median of {args.rounds} rounds, limit {HIGH_LIMIT}/min (never refused)"
    )
    say(
        table(
            ["rate limiting", "req/s", "vs off", "p99 ms", "non-2xx"],
            [
                [
                    r.label,
                    thousands(r.rps),
                    f"{r.rps / base:.2f}x",
                    f"{r.p99_ms:.1f}",
                    str(r.non_2xx),
                ]
                for r in runs
            ],
        )
    )
    say()
    say("one check() in this process, same database")
    say(
        table(
            ["limiter", "us per check", "vs in-process", "Postgres trips per check"],
            [
                [label, f"{us:.1f}", f"{us / calls[0][1]:.1f}x", f"{trips:.2f}"]
                for label, us, trips in calls
            ],
        )
    )
    say(machine_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
