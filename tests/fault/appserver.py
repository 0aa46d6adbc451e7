"""The service as operators run it: ``ladder`` subprocesses and a real uvicorn on loopback."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

from app.config import Settings
from tests.fault.pgcluster import free_port

# Settings the environment of the machine (or a .env file) must not leak into the test's runs.
_LOG_RECORD = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL):")
_SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


def ladder_argv(*args: str) -> list[str]:
    """The ``ladder`` console script of the interpreter running the tests."""
    script = Path(sys.executable).parent / "ladder"
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "app.cli", *args]


def app_env(database_url: str, **settings: str) -> dict[str, str]:
    """The process environment with the app's settings given explicitly (nothing inherited)."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS_ENV}
    env.update(
        DATABASE_URL=database_url,
        ENVIRONMENT="test",
        LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def run_ladder(workdir: Path, env: dict[str, str], *args: str) -> str:
    """Run one ``ladder`` command (outside the repo, so no .env applies); return its stdout."""
    proc = subprocess.run(
        ladder_argv(*args),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ladder {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


class AppServer:
    """``ladder serve`` on a free loopback port, its output captured to a file."""

    def __init__(
        self, workdir: Path, env: dict[str, str], log_path: Path, workers: int = 1
    ) -> None:
        self.workdir = workdir
        self.workers = workers
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        self._log = self.log_path.open("ab")
        since = self._log.tell()
        self.proc = subprocess.Popen(
            ladder_argv(
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ),
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log_text()[-4000:]}")
            try:
                # /healthz answered by one worker does not mean the others are up yet.
                ready = httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200
                started = self.log_path.read_bytes()[since:].count(b"Application startup complete")
                if ready and started >= self.workers:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server (every worker) did not come up:\n{self.log_text()[-4000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM: uvicorn stops accepting and drains what is in flight."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not go. Never raises."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _json_record(line: str) -> dict[str, Any] | None:
    """A line of the server's JSON log (LOG_FORMAT=json, the default of ``ladder serve``)."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def server_errors(log: str, limit: int = 3, tail: int = 40) -> list[str]:
    """The first few error blocks (a traceback chain up to the next log record, or a JSON log
    line's ``exc_info``), each cut to its last ``tail`` lines, which name the exception that
    escaped."""
    lines = log.splitlines()
    blocks: list[str] = []
    i = 0
    while i < len(lines) and len(blocks) < limit:
        record = _json_record(lines[i])
        if record is not None and "exc_info" in record:
            block = [str(record.get("message", "")), *str(record["exc_info"]).splitlines()]
            if len(block) > tail:
                block = [block[0], "    [...]", *block[-tail:]]
            blocks.append("\n".join(block))
            i += 1
            continue
        if not lines[i].startswith("Traceback"):
            i += 1
            continue
        start = max(0, i - 1)
        j = i + 1
        while j < len(lines) and not _LOG_RECORD.match(lines[j]):
            j += 1
        block = lines[start:j]
        if len(block) > tail:
            block = [block[0], "    [...]", *block[-tail:]]
        blocks.append("\n".join(block))
        i = j
    return blocks


def count_tracebacks(log: str) -> int:
    """Error blocks in the log (a chained traceback counts once)."""
    return len(server_errors(log, limit=1_000_000))


def count_500s(log: str) -> int:
    """Requests answered 500: uvicorn's access lines, or the service's JSON request lines."""
    count = 0
    for line in log.splitlines():
        record = _json_record(line)
        if record is not None:
            count += record.get("logger") == "app.request" and record.get("status") == 500
        elif '" 500' in line:
            count += 1
    return count
