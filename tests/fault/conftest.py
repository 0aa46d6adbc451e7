"""The fault suite's private Postgres cluster and the ``ladder serve`` processes run against it."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fault.appserver import AppServer, app_env, run_ladder
from tests.fault.pgcluster import PgCluster, missing_binaries

SUBJECT_REF = "fault-subject"
TENANT_SLUG = "fault-test"


@dataclass
class Cluster:
    pg: PgCluster
    workdir: Path
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A private cluster, migrated, with a tenant and its admin key; removed at the end."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Postgres binaries not found: {', '.join(missing)} (set FAULT_PG_BIN)")
    pg = PgCluster()
    try:
        pg.init()
        pg.start()
        workdir = tmp_path_factory.mktemp("fault")
        env = app_env(pg.url)
        run_ladder(workdir, env, "migrate")
        api_key = run_ladder(workdir, env, "create-tenant", TENANT_SLUG).strip().splitlines()[-1]
        print(f"\n[fault] private cluster {pg.data} on 127.0.0.1:{pg.port}; logs in {workdir}")
        yield Cluster(pg, workdir, api_key)
    finally:
        pg.stop()
        pg.remove()


@pytest.fixture
def server_factory(cluster: Cluster) -> Iterator[Any]:
    """Start ``ladder serve`` processes against the cluster; every one is stopped at the end."""
    started: list[AppServer] = []

    def start(name: str, workers: int = 1, **settings: str) -> AppServer:
        if not cluster.pg.is_running():
            cluster.pg.start_after_crash()
        server = AppServer(
            cluster.workdir,
            app_env(cluster.pg.url, **settings),
            cluster.workdir / f"{name}.log",
            workers=workers,
        )
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
