"""The directory where the server's worker processes keep their Prometheus values.

prometheus-client's multiprocess mode: each worker writes its values to files named after its
process id in ``PROMETHEUS_MULTIPROC_DIR``, and a scrape answered by any worker sums them. The
variable must be set before a worker imports prometheus-client, so ``ladder serve`` sets it (a
fresh temporary directory unless the operator names one) before it starts the app. Files of an
earlier run are removed at start; a worker that dies has its live gauges dropped, while its
counters stay (a counter of the service never goes down because a worker was replaced).

Nothing here imports prometheus-client at module level: the supervisor process must not choose
its value store before the variable is set.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory() -> Iterator[Path]:
    """Give this server's workers a metrics directory of their own for the server's lifetime."""
    named = os.environ.get(MULTIPROC_DIR_ENV)
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # an earlier run's workers
            stale.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="ladder-metrics-"))
    os.environ[MULTIPROC_DIR_ENV] = str(path)
    try:
        yield path
    finally:
        if not named:
            shutil.rmtree(path, ignore_errors=True)


def forget_worker(pid: int) -> None:
    """Drop the live gauges of a worker that is gone (its pool is no longer in use)."""
    from prometheus_client import multiprocess

    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if directory:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
