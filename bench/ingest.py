"""Ingest: ratings per second through POST /v1/assessments/bulk, against one-at-a-time creates.

Assessments (one rater's 14 ratings of one subject against the built-in product-management
ladder) come from the seeded generator, are encoded before the clock starts, and are sent
sequentially on one keep-alive connection to ``ladder serve``: first in bulk batches, then a
sample one at a time through POST /v1/assessments. Client wall time and server time
(Server-Timing) are both reported; the stored row count is checked at the end.

    python bench/ingest.py [--batches 20] [--batch-size 5000] [--single 500] [--quick]
"""

import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.harness import (
    MAX_ITEMS_PER_REQUEST,
    Population,
    Timed,
    base_parser,
    batches,
    builtin_framework,
    client_for,
    encode,
    ladder_server,
    machine_note,
    median,
    now_utc,
    pg_fetchval,
    post,
    say,
    stop_on_sigterm,
    table,
    thousands,
    verdict,
    world,
)

TARGET_RATINGS_PER_SECOND = 50_000


def assessment_stream(population: Population, subjects: int) -> Iterator[dict[str, Any]]:
    """Endless assessments: every subject's three raters, then again a cycle earlier."""
    for cycle in itertools.count():
        for index in range(subjects):
            yield from population.assessments(index, cycle)


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
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.batch_size, args.single, args.subjects = 3, 1000, 50, 1000
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
    sent = 300 + 30 + args.batches * args.batch_size + args.single

    with world(args) as w:
        with ladder_server(w.env, w.workdir, args.workers, "ingest") as server:
            server.start()
            with client_for(server, w.token) as client:
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
                post(client, "/v1/assessments/bulk", warm_bulk)
                for body in warm_single:
                    post(client, "/v1/assessments", body)
                w.db.analyze()  # steady state: never-analyzed tables make FK checks scan
                say(f"bulk: {args.batches} x {thousands(args.batch_size)} assessments ...")
                bulk = [post(client, "/v1/assessments/bulk", body) for body in bulk_bodies]
                say(f"one at a time: {args.single} assessments ...")
                single = [post(client, "/v1/assessments", body) for body in single_bodies]
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
        for r in results
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
    expected = sent * per_assessment
    say(
        f"stored ratings: {thousands(stored)} of {thousands(expected)} sent"
        + ("" if stored == expected else "  MISMATCH")
    )
    say()
    rate = bulk_r.ratings / bulk_r.wall
    say("targets")
    say(
        f"  >= {thousands(TARGET_RATINGS_PER_SECOND)} ratings/s through the bulk endpoint "
        f"(client wall): {thousands(rate)}  {verdict(rate >= TARGET_RATINGS_PER_SECOND)}"
    )
    say(machine_note())
    say(f"total run time {time.perf_counter() - started:.0f} s")
    return 0 if stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
