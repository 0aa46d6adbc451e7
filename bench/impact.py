"""Impact preview against cohort evaluation of the same people, measured in the same run.

The tenant clones the built-in ladder as ``pm-bench`` (version 1, published), the seeded
population of ``bench/cohort.py`` is rated against it through the bulk endpoints, and a draft
version 2 renames a competency (with a competency map), merges two others and raises a critical
requirement. On a fresh ``ladder serve --workers 1`` the benchmark alternates
``POST /v1/cohorts/evaluate`` (people and heatmap off: scoring and loading) and
``POST /v1/frameworks/pm-bench/versions/2/impact`` (two scorings, the second through the map)
and compares the server times. Target (issue 18): impact ≤ 2 × cohort.

    python bench/impact.py [--subjects 100000] [--repeats 3] [--quick]
"""

import copy
import json
import sys
import time
from typing import Any

from bench.harness import (
    FRAMEWORK_KEY,
    Population,
    Timed,
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
    stop_on_sigterm,
    table,
    thousands,
    verdict,
    world,
)

KEY = "pm-bench"
TARGET_RATIO = 2.0
STATEMENT_TIMEOUT_MS = 120_000


class ClonedPopulation(Population):
    """The seeded population, rated against the tenant's clone instead of the template."""

    def assessments(self, index: int, cycle: int = 0) -> list[dict[str, Any]]:
        """The person's assessments, naming the clone."""
        out = super().assessments(index, cycle)
        for assessment in out:
            assessment["framework"] = {"key": KEY, "version": 1}
        return out


def draft_v2(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2: execution renamed delivery, market and business merged, a requirement raised."""
    doc = copy.deepcopy(document)
    keys = [c["key"] for c in doc["competencies"]]
    assert {"execution", "market_analysis", "business_acumen"} <= set(keys), keys
    for comp in doc["competencies"]:
        if comp["key"] == "execution":
            comp["key"], comp["name"] = "delivery", "Delivery"
        if comp["key"] == "stakeholder_management" and "senior_pm" in comp["expectations"]:
            comp["expectations"]["senior_pm"]["required"] = min(
                5, comp["expectations"]["senior_pm"]["required"] + 1
            )
            comp["expectations"]["senior_pm"]["critical"] = True
    business = next(c for c in doc["competencies"] if c["key"] == "business_acumen")
    business["key"], business["name"] = "market_and_business", "Market and business judgement"
    doc["competencies"] = [c for c in doc["competencies"] if c["key"] != "market_analysis"]
    for activity in doc["activities"]:
        develops = activity["develops"]
        if "execution" in develops:
            develops["delivery"] = develops.pop("execution")
        for old in ("business_acumen", "market_analysis"):
            if old in develops:
                points = develops.pop(old)
                develops["market_and_business"] = max(
                    points, develops.get("market_and_business", 0)
                )
    doc["competency_map"] = {
        "entries": [
            {"from": "execution", "to": "delivery"},
            {
                "from": ["market_analysis", "business_acumen"],
                "to": "market_and_business",
                "weights": {"market_analysis": 1, "business_acumen": 2},
            },
        ]
    }
    doc["release_notes"] = "Benchmark edit: a rename, a merge and a stricter Senior PM."
    return doc


def prepare(client: Any) -> None:
    """Clone the ladder, publish version 1."""
    post(client, f"/v1/frameworks/{FRAMEWORK_KEY}/clone", json.dumps({"key": KEY}).encode())
    post(client, f"/v1/frameworks/{KEY}/versions/1/publish", b"", expect=200)


def add_draft(client: Any) -> None:
    """Draft version 2 from version 1's document."""
    current = client.get(f"/v1/frameworks/{KEY}/versions/1").json()["document"]
    post(client, f"/v1/frameworks/{KEY}/versions", json.dumps(draft_v2(current)).encode())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100_000, help="people (100000)")
    parser.add_argument("--repeats", type=int, default=3, help="measured requests of each kind")
    parser.add_argument("--batch", type=int, default=10_000, help="assessments per bulk request")
    args = parser.parse_args(argv)
    if args.quick:
        args.subjects, args.repeats = 2000, 1
    stop_on_sigterm()
    started = time.perf_counter()
    say(machine_note())
    with world(args) as w:
        population = ClonedPopulation(builtin_framework(), args.seed, now_utc())
        with ladder_server(loader_env(w), w.workdir, 2, "loader") as loader:
            loader.start()
            with client_for(loader, w.token) as client:
                prepare(client)
            say(f"loading {thousands(args.subjects)} subjects through the bulk API ...")
            stats = load_population(
                loader, w.token, population, 0, args.subjects, args.batch, analyze=w.db.analyze
            )
            say(f"  {thousands(stats.ratings)} ratings in {stats.seconds:.1f} s")
            with client_for(loader, w.token) as client:
                add_draft(client)
        w.db.settle()
        as_of = population.reference_time.isoformat()
        cohort_body = json.dumps(
            {
                "framework": {"key": KEY},
                "as_of": as_of,
                "include_people": False,
                "include_heatmap": False,
            }
        ).encode()
        impact_body = json.dumps({"as_of": as_of}).encode()
        env = {**w.env, "DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS)}
        cohort_runs: list[Timed] = []
        impact_runs: list[Timed] = []
        with ladder_server(env, w.workdir, 1, "measured") as server:
            server.start()
            with client_for(server, w.token) as client:
                post(client, "/v1/cohorts/evaluate", cohort_body, expect=200)  # warm-up
                post(client, f"/v1/frameworks/{KEY}/versions/2/impact", impact_body, expect=200)
                for _ in range(args.repeats):
                    cohort_runs.append(
                        post(client, "/v1/cohorts/evaluate", cohort_body, expect=200)
                    )
                    impact_runs.append(
                        post(
                            client,
                            f"/v1/frameworks/{KEY}/versions/2/impact",
                            impact_body,
                            expect=200,
                        )
                    )
        summary = impact_runs[-1].response.json()["summary"]
    cohort_s = median([t.server for t in cohort_runs])
    impact_s = median([t.server for t in impact_runs])
    ratio = impact_s / cohort_s
    say()
    say(
        table(
            ["people", "cohort (s)", "impact (s)", "impact / cohort", f"≤ {TARGET_RATIO:g}×"],
            [
                [
                    thousands(args.subjects),
                    f"{cohort_s:.2f}",
                    f"{impact_s:.2f}",
                    f"{ratio:.2f}",
                    verdict(ratio <= TARGET_RATIO),
                ]
            ],
        )
    )
    say(
        f"moved up {summary['moved_up']}, down {summary['moved_down']}, unchanged "
        f"{summary['unchanged']}; medians of {args.repeats} server times (Server-Timing)"
    )
    say(machine_note())
    say(f"total run time {time.perf_counter() - started:.0f} s")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
