"""xAPI ingestion: statements per second through POST /xapi/statements in lists of 100.

A tenant registers its LMS's account homePage, has ``--subjects`` people, and an LRS client
(HTTP Basic, the API key as password) sends ``--requests`` lists of 100 statements on one
keep-alive connection to ``ladder serve``: most are completions of the built-in ladder's
courses and certifications by known people (the first one per person and activity records a
completed activity, later ones find it done), some are ``failed`` or ``experienced``, some come
from actors nobody registered (they land in the unmapped report). Bodies are encoded before the
clock starts, and the tables are ANALYZEd after the people are loaded, as autovacuum does within
a minute in service (without statistics, the foreign-key checks of the inserts on a just-loaded
``subject`` table walk the wrong index, which cost about half of each list's time). The baseline, measured in the same run, is the same number of completions sent
one at a time through POST /v1/subjects/{ref}/completed-activities. Issue 20's target is at
least 2,000 statements per second.

    python bench/xapi.py [--requests 60] [--subjects 2000] [--workers 1] [--quick]
"""

import base64
import json
import random
import sys
import time
import uuid
from typing import Any

import httpx

from bench.harness import (
    base_parser,
    ladder_server,
    machine_note,
    median,
    post,
    say,
    stop_on_sigterm,
    table,
    thousands,
    verdict,
    world,
)

TARGET_STATEMENTS_PER_SECOND = 2_000
PER_REQUEST = 100
LMS = "https://lms.example.com"
ADL = "http://adlnet.gov/expapi/verbs/"
IRI_BASE = "https://competency-ladder.dev/xapi/activities/product-management/"
CATALOGUE = (
    "certified_product_manager",
    "certified_product_owner",
    "certified_product_leader",
    "product_analytics_course",
    "system_design_course",
    "prioritization_framework_workshop",
    "people_management_course",
)


def statement(rng: random.Random, subjects: int) -> dict[str, Any]:
    """One statement of the mix: 80% completions by known people, 10% other verbs, 10% from
    strangers."""
    roll = rng.random()
    ref = f"xapi-{rng.randrange(subjects)}" if roll < 0.9 else f"stranger-{rng.randrange(50)}"
    verb = "completed" if roll < 0.8 or roll >= 0.9 else rng.choice(("failed", "experienced"))
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "actor": {"objectType": "Agent", "account": {"homePage": LMS, "name": ref}},
        "verb": {"id": ADL + verb, "display": {"en-US": verb}},
        "object": {"objectType": "Activity", "id": IRI_BASE + rng.choice(CATALOGUE)},
        "timestamp": "2026-11-30T09:00:00Z",
        "result": {"completion": True, "score": {"scaled": round(rng.random(), 3)}},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="lists of 100 sent (60)")
    parser.add_argument("--subjects", type=int, default=2000, help="people (2000)")
    parser.add_argument("--single", type=int, default=500, help="one-at-a-time baseline (500)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.subjects, args.single = 10, 200, 50
    stop_on_sigterm()
    say(machine_note())
    rng = random.Random(args.seed)
    lists = [
        json.dumps([statement(rng, args.subjects) for _ in range(PER_REQUEST)]).encode()
        for _ in range(args.requests + 3)
    ]
    warm, measured = lists[:3], lists[3:]
    people = [
        {"external_ref": f"xapi-{i}", "track": "management", "current_level": "pm"}
        for i in range(args.subjects + args.single)
    ]
    with world(args) as w, ladder_server(w.env, w.workdir, args.workers, "xapi") as server:
        server.start()
        bearer = {"Authorization": f"Bearer {w.token}"}
        basic = base64.b64encode(f"lrs:{w.token}".encode()).decode()
        lrs_headers = {
            "Authorization": f"Basic {basic}",
            "X-Experience-API-Version": "1.0.3",
            "Content-Type": "application/json",
        }
        with httpx.Client(base_url=server.url, headers=bearer, timeout=600) as admin:
            post(admin, "/v1/subjects/bulk", json.dumps(people).encode())
            r = admin.put("/v1/learning-records/settings", json={"account_home_pages": [LMS]})
            r.raise_for_status()
        w.db.analyze()  # statistics, as a database in service has them
        with httpx.Client(base_url=server.url, headers=lrs_headers, timeout=600) as lrs:
            for body in warm:
                lrs.post("/xapi/statements", content=body).raise_for_status()
            walls = []
            started = time.perf_counter()
            for body in measured:
                t0 = time.perf_counter()
                r = lrs.post("/xapi/statements", content=body)
                walls.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    say(f"answered {r.status_code}: {r.text[:500]}")
                    return 1
            xapi_seconds = time.perf_counter() - started
        with httpx.Client(base_url=server.url, headers=bearer, timeout=600) as native:
            started = time.perf_counter()
            for i in range(args.single):
                completion = {
                    "activity": CATALOGUE[i % len(CATALOGUE)],
                    "completed_at": "2026-11-30T09:00:00Z",
                }
                ref = f"xapi-{args.subjects + i}"
                r = native.post(f"/v1/subjects/{ref}/completed-activities", json=completion)
                if r.status_code != 201:
                    say(f"baseline answered {r.status_code}: {r.text[:500]}")
                    return 1
            native_seconds = time.perf_counter() - started
        report = httpx.get(
            server.url + "/v1/learning-records/unmapped", headers=bearer, timeout=60
        ).json()
    statements = len(measured) * PER_REQUEST
    rate = statements / xapi_seconds
    native_rate = args.single / native_seconds
    say()
    say(
        table(
            ["path", "items", "seconds", "items/s", "median request ms"],
            [
                [
                    f"POST /xapi/statements, lists of {PER_REQUEST}",
                    thousands(statements),
                    f"{xapi_seconds:.2f}",
                    thousands(rate),
                    f"{median(walls) * 1000:.1f}",
                ],
                [
                    "POST completed-activities, one at a time",
                    thousands(args.single),
                    f"{native_seconds:.2f}",
                    thousands(native_rate),
                    "",
                ],
            ],
        )
    )
    say(f"ratio xAPI lists / one at a time: {rate / native_rate:.1f}x")
    say(f"unmapped report lines: {len(report['items'])} (strangers' completions)")
    ok = rate >= TARGET_STATEMENTS_PER_SECOND
    say(f"target >= {thousands(TARGET_STATEMENTS_PER_SECOND)} statements/s: {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
