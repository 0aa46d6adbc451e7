"""Rendering the score chart per request, against the JSON read of the same person in one run.

On a fresh ``ladder serve --workers 1`` the quickstart person (Ada, rated by her manager, a peer
and herself as in ``examples/quickstart.sh``) is read round after round in each representation,
interleaved so the machine's load falls on all alike: ``GET /v1/subjects/ada/score`` as JSON
(the remembered rendering), as the Vega-Lite spec, as SVG and as PNG. The chart's cost per
request is its server time (``Server-Timing: app``) less the JSON read's. The same spec is also
rendered in this process without HTTP, the renderer's own time. Target (issue 19): the SVG
score chart costs ≤ 20 ms per request.

    python bench/charts.py [--rounds 200] [--quick]
"""

import statistics
import sys
import time
from collections.abc import Sequence

import httpx

from app.charts import render
from app.charts.negotiate import JSON, PNG, SVG, VEGA_LITE
from app.charts.person import build_score
from bench.harness import (
    base_parser,
    client_for,
    ladder_server,
    machine_note,
    median,
    say,
    server_seconds,
    stop_on_sigterm,
    table,
    verdict,
    world,
)
from tools.charts import ASSESSMENTS, SUBJECT
from tools.openapi.scenario import LADDER

TARGET_MS = 20.0
WARMUP_ROUNDS = 10
MEDIA = (JSON, VEGA_LITE, SVG, PNG)
SCORE = f"/v1/subjects/{SUBJECT}/score"


def p95(values: Sequence[float]) -> float:
    """The 95th percentile."""
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def register(api: httpx.Client) -> None:
    """The quickstart person and her three assessments."""
    api.post(
        "/v1/subjects", json={"external_ref": SUBJECT, "track": "management"}
    ).raise_for_status()
    for role, rater, day, values in ASSESSMENTS:
        api.post(
            "/v1/assessments",
            json={
                "subject_ref": SUBJECT,
                "framework": LADDER,
                "rater_ref": rater,
                "rater_role": role,
                "assessed_at": f"{day}T09:00:00Z",
                "ratings": [{"competency": c, "proficiency": p} for c, p in values.items()],
            },
        ).raise_for_status()


def read(api: httpx.Client, media: str) -> tuple[float, float, int]:
    """One score read: client wall and server seconds, and the body's size."""
    started = time.perf_counter()
    r = api.get(SCORE, headers={"Accept": media})
    wall = time.perf_counter() - started
    if r.status_code != 200 or r.headers["content-type"] != media:
        raise RuntimeError(f"GET {SCORE} as {media}: {r.status_code} {r.text[:500]}")
    return wall, server_seconds(r), len(r.content)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when the target is missed."""
    parser = base_parser(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=200, help="reads per representation")
    args = parser.parse_args(argv)
    rounds = 20 if args.quick else args.rounds
    stop_on_sigterm()
    say(machine_note())
    with (
        world(args) as w,
        ladder_server(w.env, w.workdir, 1, "charts").start() as server,
        client_for(server, w.token) as api,
    ):
        register(api)
        for _ in range(WARMUP_ROUNDS):
            for media in MEDIA:
                read(api, media)
        walls: dict[str, list[float]] = {m: [] for m in MEDIA}
        servers: dict[str, list[float]] = {m: [] for m in MEDIA}
        sizes: dict[str, int] = {}
        say(f"{rounds} rounds of {len(MEDIA)} score reads of one person ...")
        for _ in range(rounds):
            for media in MEDIA:
                wall, at_server, size = read(api, media)
                walls[media].append(wall * 1000)
                servers[media].append(at_server * 1000)
                sizes[media] = size
        body = api.get(SCORE).json()
    spec = build_score(body)
    in_process = []
    for _ in range(rounds):
        started = time.perf_counter()
        render.to_svg(spec)
        in_process.append((time.perf_counter() - started) * 1000)
    json_ms = median(servers[JSON])
    rows = [
        [
            media,
            f"{median(servers[media]):.2f}",
            f"{p95(servers[media]):.2f}",
            f"{median(walls[media]):.2f}",
            f"{median(servers[media]) / json_ms:.1f}x",
            f"{median(servers[media]) - json_ms:.2f}",
            f"{sizes[media]:,}",
        ]
        for media in MEDIA
    ]
    say()
    say(
        table(
            [
                "GET score as",
                "server ms (median)",
                "p95",
                "client ms",
                "vs JSON",
                "chart ms over JSON",
                "bytes",
            ],
            rows,
        )
    )
    svg_cost = median(servers[SVG]) - json_ms
    say()
    say(
        f"SVG rendered in this process, no HTTP: median {median(in_process):.2f} ms, "
        f"p95 {p95(in_process):.2f} ms over {rounds} renders"
    )
    say(
        f"score chart as SVG per request: {svg_cost:.2f} ms over the JSON read "
        f"(target ≤ {TARGET_MS:.0f} ms): {verdict(svg_cost <= TARGET_MS)}"
    )
    say(machine_note())
    return 0 if svg_cost <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
