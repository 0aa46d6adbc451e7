"""Rater effects end to end, printed against the cohort evaluation of the same people.

The seeded population of ``bench/cohort.py`` (manager, peer and self assessments of all 14
competencies of the built-in ladder; a manager rates eight people, peers are drawn from 50,000)
is loaded through the bulk endpoints. Each size is measured on a fresh ``ladder serve --workers
1`` process: ``POST /v1/cohorts/evaluate`` without people and heatmap (loading + scoring), then
``POST /v1/calibration/rater-effects`` without and with fair averages. Server time comes from
``Server-Timing``; peak memory is the server's VmHWM after each variant (it only grows).

    python bench/calibration.py [--subjects 10000,100000] [--repeats 3] [--quick]
"""

import argparse
import json
import sys
import time

from bench.harness import (
    FRAMEWORK_KEY,
    Population,
    Timed,
    World,
    base_parser,
    builtin_framework,
    client_for,
    ladder_server,
    load_population,
    loader_env,
    machine_note,
    median,
    now_utc,
    post,
    say,
    status_kib,
    stop_on_sigterm,
    table,
    thousands,
    verdict,
    world,
)

TARGET_SECONDS = 10.0  # 100,000 people x 14 competencies x 3 raters (issue 17)
TARGET_PEAK_MIB = 1024
STATEMENT_TIMEOUT_MS = 60_000
MIB = 1024

VARIANTS: tuple[tuple[str, str, dict[str, object]], ...] = (
    (
        "cohort evaluation (loading + scoring)",
        "/v1/cohorts/evaluate",
        {"include_people": False, "include_heatmap": False},
    ),
    ("rater effects", "/v1/calibration/rater-effects", {"include_fair_averages": False}),
    ("rater effects + fair averages", "/v1/calibration/rater-effects", {}),
)


def measure(
    args: argparse.Namespace, w: World, population: Population, size: int
) -> list[tuple[str, list[Timed], int, dict[str, object]]]:
    """Each variant on one fresh single-worker server: the timed runs and the peak after them."""
    as_of = population.reference_time.isoformat()
    env = {**w.env, "DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS)}
    out = []
    with ladder_server(env, w.workdir, 1, f"calibration-{size}") as server:
        server.start()
        (pid,) = server.worker_pids()
        with client_for(server, w.token) as client:
            for name, path, extra in VARIANTS:
                body = json.dumps(
                    {"framework": {"key": FRAMEWORK_KEY}, "as_of": as_of, **extra}
                ).encode()
                say(f"  {thousands(size)}: {name} ...")
                post(client, path, body, expect=200)  # warm-up
                runs = [post(client, path, body, expect=200) for _ in range(args.repeats)]
                answer = runs[-1].response.json()
                facts: dict[str, object] = {}
                if "fit" in answer:
                    facts = {
                        "raters": len(answer["raters"]),
                        "groups": len(answer["groups"]),
                        "iterations": answer["fit"]["iterations"],
                        "MB": len(runs[-1].response.content) / 1e6,
                    }
                out.append((name, runs, status_kib(pid, "VmHWM"), facts))
    return out


def main(argv: list[str] | None = None) -> int:
    """Load, measure, print."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--subjects", default="10000,100000", help="sizes, ascending")
    parser.add_argument("--repeats", type=int, default=3, help="measured requests per variant")
    parser.add_argument("--batch", type=int, default=10_000, help="assessments per bulk request")
    args = parser.parse_args(argv)
    if args.quick:
        args.subjects, args.repeats = "1000,3000", 1
    sizes = sorted({int(s) for s in args.subjects.split(",")})
    stop_on_sigterm()
    started = time.perf_counter()
    say(machine_note())
    rows, verdicts = [], []
    with world(args) as w:
        population = Population(builtin_framework(), args.seed, now_utc())
        loaded = 0
        for size in sizes:
            say(f"loading subjects {thousands(loaded)}..{thousands(size)} ...")
            with ladder_server(loader_env(w), w.workdir, 2, f"loader-{size}") as loader:
                loader.start()
                load_population(
                    loader, w.token, population, loaded, size, args.batch, analyze=w.db.analyze
                )
            loaded = size
            w.db.settle()
            results = measure(args, w, population, size)
            baseline = median([t.server for t in results[0][1]])
            for name, runs, peak_kib, facts in results:
                server = median([t.server for t in runs])
                rows.append(
                    [
                        thousands(size),
                        name,
                        f"{server:.2f}",
                        f"{server / baseline:.2f}x",
                        thousands(peak_kib / MIB),
                        ", ".join(
                            f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v:,}"
                            for k, v in facts.items()
                        ),
                    ]
                )
                if size == 100_000 and facts:
                    verdicts.append(
                        f"  {name}, 100,000 people: {server:.2f} s <= {TARGET_SECONDS:g} s "
                        f"{verdict(server <= TARGET_SECONDS)}; peak {peak_kib / MIB:,.0f} MiB <= "
                        f"{TARGET_PEAK_MIB} MiB {verdict(peak_kib / MIB <= TARGET_PEAK_MIB)}"
                    )
    say()
    say(
        "Rater effects vs cohort evaluation of the same people (server time, median of "
        f"{args.repeats} after one warm-up; peak = server VmHWM so far)"
    )
    say(table(["people", "request", "server s", "vs cohort", "peak MiB", "answer"], rows))
    if verdicts:
        say("targets")
        for line in verdicts:
            say(line)
    say(f"total run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
