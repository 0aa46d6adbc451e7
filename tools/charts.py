"""`python -m tools.charts [--output DIR]`: the README's charts of the quickstart person.

Development tooling, not part of the service: `make charts` runs it. It migrates a temporary
SQLite database, loads the built-in ladder, and in-process (ASGI, no network) registers Ada
and her manager's, peer's and own assessments as in `examples/quickstart.sh` (the same data
`make openapi` records), then asks the ordinary routes for her score, gaps, plan and history
with `Accept: image/svg+xml` and writes what they answer. The app's clock is pinned, so the
files change only when the charts do.
"""

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx

from app.auth.keys import DEFAULT_KEY_PREFIX
from app.charts.negotiate import SVG
from app.cli import migrate
from app.config import PROJECT_ROOT, Settings
from app.db import create_engine, make_sessionmaker
from app.main import create_app
from tools.openapi.scenario import ADA, CLOCK_START, LADDER, Clock, _tenant, pinned_clock

OUTPUT_DIR = PROJECT_ROOT / "docs" / "charts"
BASE_URL = "https://ladder.example.com"
SUBJECT = "ada"
# The quickstart's three assessments: her self rating puts stakeholder management at 4.
ASSESSMENTS = (
    ("manager", "mgr-17", "2026-10-01", ADA),
    ("peer", "peer-4", "2026-10-03", ADA),
    ("self", SUBJECT, "2026-10-05", {**ADA, "stakeholder_management": 4}),
)
CHARTS = {
    "score": f"/v1/subjects/{SUBJECT}/score",
    "gaps": f"/v1/subjects/{SUBJECT}/gaps",
    "recommendations": f"/v1/subjects/{SUBJECT}/recommendations",
    "history": f"/v1/subjects/{SUBJECT}/history",
}


def quickstart_requests() -> list[tuple[str, dict[str, Any]]]:
    """The quickstart person and her three assessments: (path, JSON body) to POST in order.

    The charts here, the browser test and ``bench/charts.py`` all draw this person.
    """
    person = {
        "external_ref": SUBJECT,
        "display_name": "Ada Byron",
        "track": "management",
        "current_level": "pm",
        "attributes": {"team": "payments", "department": "product"},
    }
    assessments = [
        {
            "subject_ref": SUBJECT,
            "framework": LADDER,
            "rater_ref": rater,
            "rater_role": role,
            "assessed_at": f"{day}T09:00:00Z",
            "ratings": [{"competency": c, "proficiency": p} for c, p in values.items()],
        }
        for role, rater, day, values in ASSESSMENTS
    ]
    return [("/v1/subjects", person)] + [("/v1/assessments", body) for body in assessments]


async def _register_ada(api: httpx.AsyncClient) -> None:
    for path, body in quickstart_requests():
        (await api.post(path, json=body)).raise_for_status()


async def quickstart_charts(settings: Settings, media: str = SVG) -> dict[str, bytes]:
    """Ada's charts (name → body) from a migrated database, in the given media type."""
    with pinned_clock(Clock(CLOCK_START)):
        token = await _tenant(settings)
        app = create_app(settings)
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        try:
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(
                transport=transport, base_url=BASE_URL, headers=headers
            ) as api:
                await _register_ada(api)
                charts = {}
                for name, path in CHARTS.items():
                    r = await api.get(path, headers={"Accept": media})
                    r.raise_for_status()
                    charts[name] = r.content
        finally:
            await engine.dispose()
    return charts


def write_charts(output: Path = OUTPUT_DIR) -> list[Path]:
    """Run the quickstart on a temporary database and write its SVG charts; the files written."""
    with tempfile.TemporaryDirectory(prefix="ladder-charts-") as tmp:
        settings = Settings(
            environment="development",
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'charts.db'}",
            load_builtin_frameworks=False,
            api_key_prefix=DEFAULT_KEY_PREFIX,
            dev_api_key_file=Path(tmp) / "dev-api-key",
            webhooks_enabled=False,
            rate_limit_per_minute=0,
        )
        migrate(settings)
        charts = asyncio.run(quickstart_charts(settings))
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, svg in charts.items():
        path = output / f"{name}.svg"
        path.write_bytes(svg)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    """Write the quickstart person's charts (default: docs/charts/)."""
    parser = argparse.ArgumentParser(prog="python -m tools.charts", description=__doc__)
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR)
    args = parser.parse_args(argv)
    for path in write_charts(args.output):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
