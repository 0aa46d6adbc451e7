"""Rendering the score chart per request, against the JSON read of the same person in one run.

On a fresh ``ladder serve --workers 1`` the quickstart person (Ada, rated by her manager, a peer
and herself as in ``examples/quickstart.sh``) is read round after round in each representation,
interleaved so the machine's load falls on all alike: ``GET /v1/subjects/ada/score`` as JSON
(the remembered rendering), as the Vega-Lite spec, as SVG and as PNG. The chart's cost per
request is its server time (``Server-Timing: app``) less the JSON read's. A second server with
``SCORE_CACHE_MB=0`` renders every read anew (what the first read after a change costs), and
the same spec is rendered in this process without HTTP, the renderer's own time. Target
(issue 19): the SVG score chart costs ≤ 20 ms per request.

    python bench/charts.py [--rounds 200] [--quick]
"""

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

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
from tools.charts import SUBJECT, quickstart_requests

TARGET_MS = 20.0
WARMUP_ROUNDS = 10
MEDIA = (JSON, VEGA_LITE, SVG, PNG)
SCORE = f"/v1/subjects/{SUBJECT}/score"


def p95(values: Sequence[float]) -> float:
    """The 95th percentile."""
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def register(api: httpx.Client) -> None:
    """The quickstart person and her three assessments."""
    for path, body in quickstart_requests():
        api.post(path, json=body).raise_for_status()


def read(api: httpx.Client, media: str) -> tuple[float, float, int]:
    """One score read: client wall and server seconds, and the body's size."""
    started = time.perf_counter()
    r = api.get(SCORE, headers={"Accept": media})
    wall = time.perf_counter() - started
    if r.status_code != 200 or r.headers["content-type"] != media:
        raise RuntimeError(f"GET {SCORE} as {media}: {r.status_code} {r.text[:500]}")
    return wall, server_seconds(r), len(r.content)


@dataclass
class Reads:
    """Client and server milliseconds, and body size, of score reads per representation."""

    wall: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MEDIA})
    server: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MEDIA})
    size: dict[str, int] = field(default_factory=dict)

    def run(self, api: httpx.Client, media: Sequence[str], rounds: int) -> None:
        """`rounds` reads of each representation, interleaved."""
        for _ in range(rounds):
            for m in media:
                wall, at_server, size = read(api, m)
                self.wall[m].append(wall * 1000)
                self.server[m].append(at_server * 1000)
                self.size[m] = size

    def rows(self, label: str, media: Sequence[str]) -> list[list[str]]:
        """Table rows, each against the JSON read of the same server."""
        json_ms = median(self.server[JSON])
        return [
            [
                label,
                m,
                f"{median(self.server[m]):.2f}",
                f"{p95(self.server[m]):.2f}",
                f"{median(self.wall[m]):.2f}",
                f"{median(self.server[m]) / json_ms:.1f}x",
                f"{median(self.server[m]) - json_ms:.2f}",
                f"{self.size[m]:,}",
            ]
            for m in media
        ]

    def over_json(self, media: str) -> float:
        """The representation's median server time less the JSON read's."""
        return median(self.server[media]) - median(self.server[JSON])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when the target is missed."""
    parser = base_parser(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=200, help="reads per representation")
    args = parser.parse_args(argv)
    rounds = 20 if args.quick else args.rounds
    cold_rounds = max(5, rounds // 10)
    stop_on_sigterm()
    say(machine_note())
    warm, cold = Reads(), Reads()
    with (
        world(args) as w,
        ladder_server(w.env, w.workdir, 1, "charts").start() as server,
        ladder_server({**w.env, "SCORE_CACHE_MB": "0"}, w.workdir, 1, "cold").start() as nomemo,
        client_for(server, w.token) as api,
        client_for(nomemo, w.token) as cold_api,
    ):
        register(api)
        for client in (api, cold_api):
            for _ in range(WARMUP_ROUNDS):
                for media in MEDIA:
                    read(client, media)
        say(f"{rounds} rounds of {len(MEDIA)} score reads of one person (memo on) ...")
        warm.run(api, MEDIA, rounds)
        say(f"{cold_rounds} rounds without memo (SCORE_CACHE_MB=0: every read computed) ...")
        cold.run(cold_api, (JSON, SVG), cold_rounds)
        body = api.get(SCORE).json()
    spec = build_score(body)
    in_process, in_process_cpu = [], []
    for _ in range(cold_rounds):
        started, cpu_started = time.perf_counter(), time.process_time()
        render.to_svg(spec)
        in_process.append((time.perf_counter() - started) * 1000)
        # CPU time of this process's threads (vl-convert's included): what load cannot inflate.
        in_process_cpu.append((time.process_time() - cpu_started) * 1000)
    say()
    headers = ["server", "GET score as", "ms (median)", "p95", "client ms", "vs JSON"]
    headers += ["ms over JSON", "bytes"]
    say(table(headers, warm.rows("memo on", MEDIA) + cold.rows("no memo", (JSON, SVG)), left=2))
    svg_cost, cold_cost = warm.over_json(SVG), cold.over_json(SVG)
    say()
    say(
        f"SVG rendered in this process, no HTTP: median {median(in_process):.2f} ms, "
        f"p95 {p95(in_process):.2f} ms, CPU median {median(in_process_cpu):.2f} ms "
        f"over {cold_rounds} renders"
    )
    say(
        f"score chart as SVG per request: {svg_cost:.2f} ms over the JSON read "
        f"(target ≤ {TARGET_MS:.0f} ms): {verdict(svg_cost <= TARGET_MS)}"
    )
    say(
        f"  rendered anew (first read after a change, or no memo): {cold_cost:.2f} ms over "
        f"the JSON read: {verdict(cold_cost <= TARGET_MS)}"
    )
    say(machine_note())
    return 0 if svg_cost <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
