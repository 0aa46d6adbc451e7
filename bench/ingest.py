"""Ingest: ratings per second through POST /v1/assessments/bulk, against one-at-a-time creates.

Assessments (one rater's 14 ratings of one subject against the built-in product-management
ladder) come from the seeded generator, are encoded before the clock starts, and are sent
sequentially on one keep-alive connection to ``ladder serve``: first in bulk batches, then a
sample one at a time through POST /v1/assessments. Client wall time and server time
(Server-Timing) are both reported; the stored row count is checked at the end.

Then the cost of one maximum-size request: a fresh single-worker server receives
``--max-requests`` requests of 20,000 assessments whose ratings carry evidence text (about
62.6 MB each, just under MAX_BULK_REQUEST_BYTES). The worker's peak resident memory
(``VmHWM`` of /proc/<pid>/status, reset through /proc/<pid>/clear_refs before each request) is
compared with its resident memory when idle just before, after a small warm-up request.

With ``--baseline-ref REF`` the ``app/`` package of git commit REF (e.g. the commit before a
change) is served too, by a second server of each kind on the same database, and its requests
alternate with this code's, so both see the same machine; ratios are this code / REF.

    python bench/ingest.py [--batches 20] [--batch-size 5000] [--single 500] [--max-requests 2]
                           [--baseline-ref REF] [--quick]
"""

import itertools
import random
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness import (
    MAX_ITEMS_PER_REQUEST,
    Population,
    Server,
    Timed,
    base_parser,
    batches,
    builtin_framework,
    client_for,
    encode,
    env_with_app_of,
    ladder_server,
    machine_note,
    median,
    now_utc,
    pg_fetchval,
    post,
    say,
    server_seconds,
    status_kib,
    stop_on_sigterm,
    table,
    thousands,
    verdict,
    world,
)

TARGET_RATINGS_PER_SECOND = 50_000
TARGET_PEAK_ABOVE_IDLE_MIB = 256
# Ratings per second of the bulk path as README recorded it before bounded batches (2026-11-22).
README_RATINGS_PER_SECOND = 59_603
EVIDENCE_WORDS = (
    "led the quarterly planning review and aligned three teams on a single roadmap",
    "wrote the decision memo and walked stakeholders through the trade-offs",
    "shipped the onboarding rework on time despite a late change of scope",
    "coached a new colleague through their first discovery interviews",
    "ran the post-incident review and followed up on every action item",
    "negotiated the launch date with sales after weighing support capacity",
)


def assessment_stream(population: Population, subjects: int) -> Iterator[dict[str, Any]]:
    """Endless assessments: every subject's three raters, then again a cycle earlier."""
    for cycle in itertools.count():
        for index in range(subjects):
            yield from population.assessments(index, cycle)


def with_evidence(items: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The items with evidence text (about 150 characters) on every rating, seeded."""
    rng = random.Random(seed)
    for item in items:
        for rating in item["ratings"]:
            text = f"Observed {rng.randrange(1, 400)} days ago: " + rng.choice(EVIDENCE_WORDS)
            rating["evidence"] = (text + "; " + rng.choice(EVIDENCE_WORDS))[
                : rng.randrange(120, 176)
            ]
    return items


def post_any(client: httpx.Client, path: str, body: bytes) -> Timed:
    """POST a JSON body and time it, whatever the answer (the caller reports failures)."""
    started = time.perf_counter()
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    return Timed(response, time.perf_counter() - started, server_seconds(response))


def reset_peak(pid: int) -> None:
    """Reset the process's peak resident set (VmHWM) to its current size."""
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")


@dataclass(frozen=True, slots=True)
class MaxRequest:
    """One maximum-size request: its size, time and the worker's memory around it."""

    body_bytes: int
    timing: Timed
    idle_kib: int
    peak_kib: int

    @property
    def above_idle_mib(self) -> float:
        """Peak resident memory above the idle worker, MiB."""
        return (self.peak_kib - self.idle_kib) / 1024


def max_request(client: httpx.Client, pid: int, body: bytes) -> MaxRequest:
    """Send one maximum-size request and read the worker's memory around it."""
    time.sleep(1)
    idle = status_kib(pid, "VmRSS")
    reset_peak(pid)
    timing = post_any(client, "/v1/assessments/bulk", body)
    if timing.response.status_code != 201:
        say(f"  answered {timing.response.status_code}: {timing.response.text[:300]}")
    return MaxRequest(len(body), timing, idle, status_kib(pid, "VmHWM"))


@dataclass(frozen=True, slots=True)
class PathResult:
    """One way of sending assessments: requests, counts and times."""

    label: str
    timings: list[Timed]
    assessments: int
    ratings: int

    @property
    def wall(self) -> float:
        """Client wall time, summed over requests."""
        return sum(t.wall for t in self.timings)

    @property
    def server(self) -> float:
        """Server time, summed over requests."""
        return sum(t.server for t in self.timings)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="bulk requests (20)")
    parser.add_argument("--batch-size", type=int, default=5000, help="assessments per request")
    parser.add_argument("--single", type=int, default=500, help="one-at-a-time sample (500)")
    parser.add_argument("--subjects", type=int, default=10_000, help="subjects rated (10000)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    parser.add_argument(
        "--max-requests", type=int, default=2, help="maximum-size requests with evidence (2)"
    )
    parser.add_argument(
        "--baseline-ref", help="git commit whose app/ is served too, for same-run ratios"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.batch_size, args.single, args.subjects = 3, 1000, 50, 1000
        args.max_requests = 1
    if args.batch_size > MAX_ITEMS_PER_REQUEST:
        parser.error(f"--batch-size is at most {MAX_ITEMS_PER_REQUEST} (the service's limit)")
    stop_on_sigterm()
    started = time.perf_counter()
    say(machine_note())
    population = Population(builtin_framework(), args.seed, now_utc())
    per_assessment = len(population.competencies)

    say("encoding the request bodies ...")
    stream = assessment_stream(population, args.subjects)
    warm_bulk = encode(list(itertools.islice(stream, 300)))
    warm_single = [encode([a])[1:-1] for a in itertools.islice(stream, 30)]
    bulk_bodies = [
        encode(list(itertools.islice(stream, args.batch_size))) for _ in range(args.batches)
    ]
    single_bodies = [encode([a])[1:-1] for a in itertools.islice(stream, args.single)]
    warm_max = encode(with_evidence(list(itertools.islice(stream, 300)), args.seed))
    max_bodies = [
        encode(with_evidence(list(itertools.islice(stream, MAX_ITEMS_PER_REQUEST)), args.seed + n))
        for n in range(args.max_requests)
    ]
    sent = 300 + 30 + args.batches * args.batch_size + args.single + 300

    with world(args) as w, ExitStack() as stack:
        base_env = (
            env_with_app_of(w.env, args.baseline_ref, w.workdir / "baseline")
            if args.baseline_ref
            else None
        )

        def servers(name: str, workers: int) -> list[tuple[Server, httpx.Client]]:
            """This code's server, and the baseline's if asked for; started, with clients."""
            found = []
            for env, suffix in ((w.env, ""), (base_env, "-baseline")):
                if env is not None:
                    server = stack.enter_context(
                        ladder_server(env, w.workdir, workers, name + suffix)
                    )
                    server.start()
                    found.append((server, stack.enter_context(client_for(server, w.token))))
            return found

        pair = servers("ingest", args.workers)
        client = pair[0][1]
        say(f"registering {thousands(args.subjects)} subjects ...")
        subject_timings = [
            post(
                client,
                "/v1/subjects/bulk",
                encode([population.subject(i) for i in r]),
            )
            for r in batches(0, args.subjects, MAX_ITEMS_PER_REQUEST)
        ]
        say("warming up ...")
        for _, each in pair:
            post(each, "/v1/assessments/bulk", warm_bulk)
        sent += 300 * (len(pair) - 1)
        for body in warm_single:
            post(client, "/v1/assessments", body)
        w.db.analyze()  # steady state: never-analyzed tables make FK checks scan
        say(f"bulk: {args.batches} x {thousands(args.batch_size)} assessments ...")
        timed: list[list[Timed]] = [[] for _ in pair]
        for body in bulk_bodies:  # alternating, so both codes see the same machine
            for n, (_, each) in enumerate(pair):
                timed[n].append(post(each, "/v1/assessments/bulk", body))
        bulk = timed[0]
        base_bulk = timed[1] if len(timed) > 1 else []
        sent += len(base_bulk) * args.batch_size
        say(f"one at a time: {args.single} assessments ...")
        single = [post(client, "/v1/assessments", body) for body in single_bodies]
        for server, _ in pair:
            server.stop()
        say(f"maximum-size requests: {args.max_requests} x 20,000 assessments with evidence")
        fresh = servers("ingest-max", 1)
        for _, each in fresh:
            post(each, "/v1/assessments/bulk", warm_max)
        sent += 300 * (len(fresh) - 1)
        measured: list[list[MaxRequest]] = [[] for _ in fresh]
        for body in max_bodies:  # alternating too
            for n, (server, each) in enumerate(fresh):
                measured[n].append(max_request(each, server.worker_pids()[0], body))
        largest = measured[0]
        base_largest = measured[1] if len(measured) > 1 else []
        for server, _ in fresh:
            server.stop()
        stored = pg_fetchval(w.db.owner_url, "SELECT count(*) FROM rating")

    results = [
        PathResult(
            f"POST /v1/assessments/bulk ({thousands(args.batch_size)} per request)",
            bulk,
            args.batches * args.batch_size,
            args.batches * args.batch_size * per_assessment,
        ),
        PathResult(
            "POST /v1/assessments (one per request)",
            single,
            args.single,
            args.single * per_assessment,
        ),
    ]
    base_r = None
    if base_bulk:
        base_r = PathResult(
            f"... the same, app/ of {args.baseline_ref} (alternating)",
            base_bulk,
            args.batches * args.batch_size,
            args.batches * args.batch_size * per_assessment,
        )
    rows = [
        [
            r.label,
            thousands(len(r.timings)),
            thousands(r.assessments),
            thousands(r.ratings),
            f"{r.wall:.2f}",
            f"{r.server:.2f}",
            thousands(r.ratings / r.wall),
            thousands(r.ratings / r.server),
            f"{median([t.wall for t in r.timings]) * 1000:.1f}",
        ]
        for r in [*results, *([base_r] if base_r else [])]
    ]
    bulk_r, single_r = results
    subject_wall = sum(t.wall for t in subject_timings)
    say()
    say(
        f"Ingest - assessments of {per_assessment} ratings each (product-management ladder), "
        f"ladder serve --workers {args.workers}, Postgres; one keep-alive connection, "
        "sequential requests, bodies encoded before timing, tables analyzed after the warm-up"
    )
    say()
    say(
        table(
            [
                "path",
                "requests",
                "assessments",
                "ratings",
                "client s",
                "server s",
                "ratings/s client",
                "ratings/s server",
                "p50 ms/request",
            ],
            rows,
        )
    )
    say(
        f"(also: {thousands(args.subjects)} subjects through POST /v1/subjects/bulk in "
        f"{subject_wall:.2f} s, {thousands(args.subjects / subject_wall)} subjects/s)"
    )
    say()
    say(
        f"bulk / one at a time, ratings per second: {single_r.wall / single_r.ratings * bulk_r.ratings / bulk_r.wall:.1f}x "
        f"(client), {single_r.server / single_r.ratings * bulk_r.ratings / bulk_r.server:.1f}x (server)"
    )
    sent += sum(
        MAX_ITEMS_PER_REQUEST
        for m in largest + base_largest
        if m.timing.response.status_code == 201
    )
    expected = sent * per_assessment
    say(
        f"stored ratings: {thousands(stored)} of {thousands(expected)} sent"
        + ("" if stored == expected else "  MISMATCH")
    )
    max_ratings = MAX_ITEMS_PER_REQUEST * per_assessment
    if largest:
        say()
        say(
            "One maximum-size request - 20,000 assessments x 14 ratings with evidence, "
            "fresh ladder serve --workers 1, after a 300-assessment warm-up"
        )
        say()
        say(
            table(
                [
                    "code",
                    "request",
                    "body MB",
                    "client s",
                    "server s",
                    "ratings/s client",
                    "worker idle MiB",
                    "worker peak MiB",
                    "peak - idle MiB",
                ],
                [
                    [
                        code,
                        f"{n + 1} ({m.timing.response.status_code})",
                        f"{m.body_bytes / 1e6:.1f}",
                        f"{m.timing.wall:.2f}",
                        f"{m.timing.server:.2f}",
                        thousands(max_ratings / m.timing.wall),
                        f"{m.idle_kib / 1024:.0f}",
                        f"{m.peak_kib / 1024:.0f}",
                        f"{m.above_idle_mib:.0f}",
                    ]
                    for code, runs in (("this", largest), (str(args.baseline_ref), base_largest))
                    for n, m in enumerate(runs)
                ],
            )
        )
    say()
    rate = bulk_r.ratings / bulk_r.wall
    if base_r is not None:
        say(
            f"bulk ratings/s, this code / {args.baseline_ref} in the same run: "
            f"{rate / (base_r.ratings / base_r.wall):.2f}x (client), "
            f"{base_r.server / bulk_r.server:.2f}x (server)"
        )
        mine, theirs = (max(m.above_idle_mib for m in runs) for runs in (largest, base_largest))
        say(
            f"maximum-size request, peak above idle, this code / {args.baseline_ref}: "
            f"{mine:.0f} / {theirs:.0f} MiB = {mine / theirs:.2f}x"
        )
        done = [
            [m.timing.wall for m in runs if m.timing.response.status_code == 201]
            for runs in (largest, base_largest)
        ]
        if all(done):
            say(
                f"maximum-size request, ratings/s this code / {args.baseline_ref}: "
                f"{median(done[1]) / median(done[0]):.2f}x"
            )
        else:
            say(
                "maximum-size request, ratings/s: not compared "
                f"(answered 201: {len(done[0])} of this code's, {len(done[1])} of the baseline's)"
            )
    say(
        f"bulk ratings/s against README's figure before bounded batches ({thousands(README_RATINGS_PER_SECOND)}, "
        f"measured on another day): {rate / README_RATINGS_PER_SECOND:.2f}x"
    )
    worst = max(largest, key=lambda m: m.above_idle_mib) if largest else None
    if worst is not None:
        say(
            f"largest peak of a maximum-size request: {worst.peak_kib / 1024:.0f} MiB = "
            f"{worst.peak_kib / worst.idle_kib:.2f}x the idle worker ({worst.idle_kib / 1024:.0f} MiB)"
        )
    say("targets")
    say(
        f"  >= {thousands(TARGET_RATINGS_PER_SECOND)} ratings/s through the bulk endpoint "
        f"(client wall): {thousands(rate)}  {verdict(rate >= TARGET_RATINGS_PER_SECOND)}"
    )
    if worst is not None:
        say(
            f"  a maximum-size request peaks < {TARGET_PEAK_ABOVE_IDLE_MIB} MiB above the idle "
            f"worker: {worst.above_idle_mib:.0f} MiB  "
            f"{verdict(worst.above_idle_mib < TARGET_PEAK_ABOVE_IDLE_MIB)}"
        )
    say(machine_note())
    say(f"total run time {time.perf_counter() - started:.0f} s")
    return 0 if stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
