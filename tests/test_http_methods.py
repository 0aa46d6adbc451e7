"""HEAD and 405 as HTTP defines them, against a real ``ladder serve`` on loopback.

RFC 9110: a general-purpose server supports HEAD wherever it supports GET (§9.1), answering with
the headers GET would send and no content (§9.3.2); a 405 lists the resource's methods in
``Allow`` (§15.5.6). Monitors, link checkers and caches revalidating a read send HEAD; the xAPI spec requires it of a
learning record store.
"""

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fault.appserver import AppServer, app_env, run_ladder

SCORE = "/v1/subjects/{ref}/score"
# Ada has no assessments yet: her score names the framework.
ADA_SCORE = "/v1/subjects/ada/score?framework=product-management"
# Headers that belong to one answer, not to the resource.
PER_ANSWER = {"date", "x-request-id", "server-timing"}


@dataclass(frozen=True)
class Served:
    server: AppServer
    headers: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("http-methods")
    env = app_env(f"sqlite+aiosqlite:///{workdir / 'ladder.db'}", WEBHOOKS_ENABLED="false")
    run_ladder(workdir, env, "migrate")
    key = run_ladder(workdir, env, "create-tenant", "methods").strip().splitlines()[-1]
    server = AppServer(workdir, env, workdir / "server.log")
    server.start()
    # The xAPI version header is required under /xapi/ and not read elsewhere.
    headers = {"Authorization": f"Bearer {key}", "X-Experience-API-Version": "1.0.3"}
    r = httpx.post(
        f"{server.base_url}/v1/subjects",
        json={"external_ref": "ada", "display_name": "Ada", "track": "ic"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    try:
        yield Served(server, headers)
    finally:
        server.stop()


def _resource_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in PER_ANSWER}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/healthz", 200),
        ("/openapi.json", 200),
        ("/v1/frameworks", 200),
        ("/v1/subjects/ada", 200),
        (ADA_SCORE, 200),
        ("/v1/subjects/nobody", 404),
        # xAPI 1.0.3 Part 3, 1.1: an LRS answers HEAD as the GET, without the message-body.
        (f"/xapi/statements?statementId={uuid.uuid4()}", 404),
    ],
)
def test_head_answers_with_the_headers_of_get_and_no_content(
    served: Served, path: str, status: int
) -> None:
    url = served.server.base_url + path
    got = httpx.get(url, headers=served.headers)
    head = httpx.head(url, headers=served.headers)
    assert got.status_code == status, got.text
    assert head.status_code == status
    assert head.content == b""
    assert _resource_headers(head) == _resource_headers(got)
    assert int(head.headers["content-length"]) == len(got.content)


def test_head_revalidates_a_score_and_is_refused_like_get(served: Served) -> None:
    url = served.server.base_url + ADA_SCORE
    etag = httpx.get(url, headers=served.headers).headers["etag"]
    assert httpx.head(url, headers={**served.headers, "If-None-Match": etag}).status_code == 304
    assert httpx.head(url).status_code == 401
    nobody = served.server.base_url + SCORE.format(ref="nobody")
    assert httpx.head(nobody, headers=served.headers).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/subjects/ada/score", "GET, HEAD"),
        ("PUT", "/v1/subjects/ada", "DELETE, GET, HEAD, PATCH"),
        ("DELETE", "/v1/subjects", "GET, HEAD, POST"),
        ("GET", "/v1/assessments/bulk", "POST"),
        ("HEAD", "/v1/assessments/bulk", "POST"),
        # A path without parameters names its resource before any template that matches it
        # too, as in the OpenAPI document (GET /v1/subjects/bulk still reads a subject "bulk").
        ("OPTIONS", "/v1/subjects/bulk", "POST"),
        ("OPTIONS", "/v1/frameworks/import", "POST"),
    ],
)
def test_a_wrong_method_is_told_the_methods_of_the_resource(
    served: Served, method: str, path: str, allowed: str
) -> None:
    r = httpx.request(method, served.server.base_url + path, headers=served.headers)
    assert r.status_code == 405
    assert r.headers["allow"] == allowed
    if method != "HEAD":
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 405


def test_a_head_request_is_logged_as_head_on_its_route(served: Served) -> None:
    marker = "head-logged-once"
    r = httpx.head(
        served.server.base_url + ADA_SCORE, headers={**served.headers, "X-Request-ID": marker}
    )
    assert r.status_code == 200
    # The line is written once the answer is sent: wait for it, a bounded while.
    deadline = time.monotonic() + 10
    while True:
        request_lines = [
            line
            for line in map(json.loads, _json_lines(served.server.log_path, marker))
            if line["logger"] == "app.request"
        ]
        if request_lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(line["method"], line["route"], line["status"]) for line in request_lines] == [
        ("HEAD", SCORE, 200)
    ]


def _json_lines(log_path: Path, marker: str) -> list[str]:
    return [
        line
        for line in log_path.read_text().splitlines()
        if marker in line and line.startswith("{")
    ]
