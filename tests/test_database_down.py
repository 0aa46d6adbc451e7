"""With the database unreachable: 503 problems with Retry-After, liveness stays up."""

from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from app.db import create_engine, make_sessionmaker
from app.main import create_app

pytestmark = pytest.mark.anyio

KEY = "cl_" + "0" * 32 + "_" + "A" * 43


@pytest.fixture
async def down_client() -> AsyncIterator[httpx.AsyncClient]:
    # Port 9 (discard) on loopback: nothing listens, connections are refused at once.
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:9/nothing",
        db_connect_timeout_seconds=1,
        load_builtin_frameworks=False,
    )
    app = create_app(settings)
    app.state.engine = create_engine(settings)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client
    await app.state.engine.dispose()


async def test_api_answers_503_with_retry_after(down_client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/v1/frameworks"),
        ("GET", "/v1/subjects/emp-1/score"),
        ("POST", "/v1/subjects"),
    ):
        r = await down_client.request(
            method, path, headers={"Authorization": f"Bearer {KEY}"}, json={"external_ref": "x"}
        )
        assert r.status_code == 503, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "5"


async def test_liveness_up_readiness_down(down_client: httpx.AsyncClient) -> None:
    assert (await down_client.get("/healthz")).status_code == 200
    r = await down_client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["retry-after"]
