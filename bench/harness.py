"""Shared parts of the benchmarks: a private database, servers, seeded data, wrk and tables.

Every benchmark builds its own world and tears it down: a fresh database (``ladder_bench_<hex>``)
and an unprivileged role on the Postgres server, migrated with ``ladder migrate``, a tenant made
with ``ladder create-tenant``, servers started with ``ladder serve`` on free loopback ports, and
everything stopped and dropped in ``finally`` blocks, also on Ctrl-C and SIGTERM.
"""

import argparse
import asyncio
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import create_engine, driver_url, make_sessionmaker
from app.frameworks.compile import compile_framework
from app.frameworks.document import parse_document
from app.frameworks.files import load_file
from app.frameworks.service import ensure_builtin
from app.scoring import Framework, level_path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK_KEY = "product-management"
BUILTIN_FILE = ROOT / "app" / "frameworks" / "builtin" / f"{FRAMEWORK_KEY}.yaml"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_URL_ENV = "BENCH_DATABASE_URL"
TENANT_SLUG = "bench"
RATER_ROLES = ("manager", "peer", "self")
MAX_ITEMS_PER_REQUEST = 20_000  # the service's default MAX_BULK_ITEMS


# ---------------------------------------------------------------- command line and output


def base_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(SERVER_URL_ENV, DEFAULT_SERVER_URL),
        help=f"a Postgres server to create the bench database on (env {SERVER_URL_ENV}; "
        f"default {DEFAULT_SERVER_URL})",
    )
    parser.add_argument("--seed", type=int, default=20_260_101, help="seed of the data generator")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with small sizes")
    parser.add_argument(
        "--superuser",
        action="store_true",
        help="serve as the server's superuser (row-level security bypassed) instead of an "
        "unprivileged role as in production",
    )
    return parser


def load_options(
    parser: argparse.ArgumentParser, *, subjects: int, seconds: int, warmup: int, rounds: int
) -> None:
    """The options of a benchmark that loads a service with wrk; ``--quick`` shrinks them (see
    ``quick_load``)."""
    parser.add_argument(
        "--subjects", type=int, default=subjects, help=f"distinct subjects ({subjects})"
    )
    parser.add_argument(
        "--seconds", type=int, default=seconds, help=f"measured seconds per run ({seconds})"
    )
    parser.add_argument(
        "--warmup", type=int, default=warmup, help=f"warm-up seconds per run ({warmup})"
    )
    parser.add_argument(
        "--rounds", type=int, default=rounds, help=f"rounds over the endpoints ({rounds})"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of each server")


def quick_load(args: argparse.Namespace) -> None:
    """With ``--quick``: 100 subjects, one round of 3 s after 1 s of warm-up."""
    if args.quick:
        args.subjects, args.seconds, args.warmup, args.rounds = 100, 3, 1, 1


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so the ``finally`` blocks stop servers and drop databases."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def say(message: str = "") -> None:
    """Print a progress line at once."""
    print(message, flush=True)


def machine_note() -> str:
    """The machine's load, to read next to the numbers (other work skews every benchmark)."""
    one, five, _ = os.getloadavg()
    cores = os.cpu_count() or 1
    note = f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {cores} cores"
    if one > 0.5 * cores:
        note += " - WARNING: the machine is busy with other work; numbers will be noisy"
    return note


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A plain-text table: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def thousands(value: float) -> str:
    """An integer with thousands separators."""
    return f"{value:,.0f}"


def verdict(ok: bool) -> str:
    """PASS or MISS, for target lines."""
    return "PASS" if ok else "MISS"


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    return float(statistics.median(values))


# ---------------------------------------------------------------- Postgres


asyncpg_url = driver_url  # a libpq-style URL asyncpg accepts


async def _execute(url: str, statements: Sequence[str]) -> None:
    """Run statements on one short-lived connection."""
    conn = await asyncpg.connect(asyncpg_url(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def pg_execute(url: str, *statements: str) -> None:
    """Run statements one by one, each in its own implicit transaction."""
    asyncio.run(_execute(url, statements))


async def _fetchval(url: str, query: str, args: Sequence[Any]) -> Any:
    """One value from one short-lived connection."""
    conn = await asyncpg.connect(asyncpg_url(url))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def pg_fetchval(url: str, query: str, *args: Any) -> Any:
    """The first column of the first row of a query."""
    return asyncio.run(_fetchval(url, query, args))


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """A private database; the service connects as ``app_url``, migrations as ``owner_url``."""

    name: str
    role: str | None
    admin_url: str
    owner_url: str
    app_url: str

    def grant_app_role(self) -> None:
        """Give the unprivileged role what the service needs, after the migrations made tables."""
        if self.role is None:
            return
        pg_execute(
            self.owner_url,
            f'GRANT CONNECT ON DATABASE "{self.name}" TO "{self.role}"',
            f'GRANT USAGE ON SCHEMA public TO "{self.role}"',
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{self.role}"',
        )

    def analyze(self) -> None:
        """ANALYZE: fresh tables need statistics before foreign-key checks use the primary key."""
        pg_execute(self.owner_url, "ANALYZE")

    def settle(self) -> None:
        """VACUUM ANALYZE and CHECKPOINT, so bulk-loaded tables behave as in steady state."""
        pg_execute(self.owner_url, "VACUUM ANALYZE", "CHECKPOINT")


@contextmanager
def bench_database(server_url: str, superuser: bool) -> Iterator[BenchDatabase]:
    """Create ``ladder_bench_<hex>`` (and an app role unless ``superuser``); drop both at the end."""
    suffix = secrets.token_hex(4)
    name = f"ladder_bench_{suffix}"
    base = make_url(asyncpg_url(server_url))
    admin_url = base.set(database=base.database or "postgres").render_as_string(hide_password=False)
    owner_url = base.set(database=name).render_as_string(hide_password=False)
    role = None if superuser else f"ladder_bench_app_{suffix}"
    password = secrets.token_hex(16)
    app_url = (
        owner_url
        if role is None
        else base.set(database=name, username=role, password=password).render_as_string(
            hide_password=False
        )
    )
    pg_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        if role is not None:
            pg_execute(
                admin_url,
                f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE '
                f"PASSWORD '{password}'",
            )
        say(f"database {name} created" + (f", service role {role}" if role else ""))
        yield BenchDatabase(name, role, admin_url, owner_url, app_url)
    finally:
        statements = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']
        if role is not None:
            statements.append(f'DROP ROLE IF EXISTS "{role}"')
        try:
            pg_execute(admin_url, *statements)
            say(f"database {name} dropped")
        except Exception as exc:  # cleanup must not hide the benchmark's own error
            print(f"warning: could not drop {name}: {exc}", file=sys.stderr)


# ---------------------------------------------------------------- processes


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ladder_argv(*args: str) -> list[str]:
    """The ``ladder`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "ladder"
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "app.cli", *args]


def service_env(db: BenchDatabase, **extra: str) -> dict[str, str]:
    """This process's environment minus the app's settings, plus the bench database's."""
    names = {name.upper() for name in Settings.model_fields} | {"WEB_CONCURRENCY"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    paths = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env.update(
        DATABASE_URL=db.app_url,
        MIGRATION_DATABASE_URL=db.owner_url,
        ENVIRONMENT="production",
        LOAD_BUILTIN_FRAMEWORKS="true",
        LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(paths),
    )
    env.update(extra)
    return env


def run_ladder(env: dict[str, str], workdir: Path, *args: str) -> str:
    """Run one ``ladder`` command outside the repository (no .env applies); return stdout."""
    proc = subprocess.run(
        ladder_argv(*args),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ladder {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _children(pid: int) -> list[int]:
    """The direct children of a process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    """A process's command line (its title, for Postgres backends), or "" if it is gone."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User plus system CPU seconds consumed so far by each process still alive."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            stat = (Path("/proc") / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two ``cpu_seconds`` snapshots (new processes count in full)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def backend_pids(database: str) -> list[int]:
    """The Postgres backends connected to a database (local server only; else empty)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and f" {database} " in _cmdline(int(entry.name)):
            found.append(int(entry.name))
    return found


def status_kib(pid: int, field: str) -> int:
    """A memory field of /proc/<pid>/status (VmHWM, VmRSS...) in KiB."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Server:
    """A server subprocess on a loopback port, in its own process group, logging to a file."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], workdir: Path, workers: int = 1
    ) -> None:
        self.name = name
        self.workers = workers
        self.argv = argv
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def port(self) -> int:
        """The port from ``--port`` in the command line."""
        return int(self.argv[self.argv.index("--port") + 1])

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, health_path: str = "/healthz", timeout: float = 120) -> "Server":
        """Start the process and wait until the health path answers 200."""
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                healthy = httpx.get(self.url + health_path, timeout=2).status_code == 200
            except httpx.TransportError:
                healthy = False
            if healthy and len(self.worker_pids()) == self.workers:
                return self
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} did not answer {health_path} with {self.workers} worker(s):\n"
            + self.log_tail()
        )

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: uvicorn's spawned workers, else the process itself."""
        assert self.proc is not None
        workers = [p for p in _children(self.proc.pid) if "spawn_main" in _cmdline(p)]
        return sorted(workers) or [self.proc.pid]

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL the process group if it lingers. Never raises."""
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(30)
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # workers left behind, if any
            with suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def env_with_app_of(env: dict[str, str], ref: str, into: Path) -> dict[str, str]:
    """The service's environment with ``app/`` of git commit ``ref`` first on the path."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "app"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return {**env, "PYTHONPATH": os.pathsep.join([str(into), env["PYTHONPATH"]])}


def ladder_server(env: dict[str, str], workdir: Path, workers: int, name: str) -> Server:
    """``ladder serve --workers N`` on a free loopback port (not started yet)."""
    argv = ladder_argv(
        "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--workers", str(workers)
    )
    return Server(name, argv, env, workdir, workers)


@dataclass(frozen=True, slots=True)
class World:
    """What every benchmark starts from: a migrated database, a tenant and its admin key."""

    workdir: Path
    db: BenchDatabase
    env: dict[str, str]
    token: str
    tenant_id: str


async def _load_builtin(url: str) -> None:
    """Load the built-in ladder the way the service does at start."""
    engine = create_engine(Settings(database_url=url))
    try:
        async with make_sessionmaker(engine)() as session:
            await ensure_builtin(session)
            await session.commit()
    finally:
        await engine.dispose()


def loader_env(w: World) -> dict[str, str]:
    """The service's environment for loading data (not measured): a generous statement timeout."""
    return {**w.env, "DB_STATEMENT_TIMEOUT_MS": "300000"}


@contextmanager
def world(args: argparse.Namespace) -> Iterator[World]:
    """A scratch directory, a migrated bench database and a tenant; all removed at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="ladder-bench-"))
    failed = False
    try:
        with bench_database(args.database_url, args.superuser) as db:
            env = service_env(db)
            run_ladder(env, workdir, "migrate")
            db.grant_app_role()
            # Before any multi-worker start: workers loading the ladder at once can collide.
            asyncio.run(_load_builtin(db.app_url))
            token = run_ladder(env, workdir, "create-tenant", TENANT_SLUG).strip().splitlines()[-1]
            tenant_id = str(
                pg_fetchval(db.owner_url, "SELECT id FROM tenant WHERE slug = $1", TENANT_SLUG)
            )
            yield World(workdir, db, env, token, tenant_id)
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            print(f"server logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def ensure_wrk() -> str:
    """The path of wrk, installing it with apt-get when missing; exits non-zero if impossible."""
    found = shutil.which("wrk")
    if found:
        return found
    say("wrk is not installed; trying apt-get install wrk ...")
    prefix: list[str] | None = [] if os.geteuid() == 0 else None
    if prefix is None and shutil.which("sudo"):
        prefix = ["sudo", "-n"]
    if prefix is not None and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            done = subprocess.run(
                [*prefix, *argv], env=env, stdin=subprocess.DEVNULL, check=False, timeout=600
            )
            if done.returncode != 0:
                break
        found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            "error: this benchmark needs the wrk load generator, and it could not be installed "
            "automatically (needs apt-get and root or passwordless sudo). Install it "
            "(Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk) and run again."
        )
    return found


# ---------------------------------------------------------------- seeded data


def builtin_framework(version: int = 1) -> Framework:
    """The built-in product-management ladder, compiled for the scoring engine."""
    return compile_framework(
        parse_document(load_file(BUILTIN_FILE.read_bytes(), BUILTIN_FILE.name)), version
    )


@dataclass(frozen=True, slots=True)
class Person:
    """A generated subject: where they really work and what HR has on file."""

    index: int
    ref: str
    track: str
    level: str
    official_level: str
    targets: tuple[float, ...]  # the proficiency raters see on average, per competency


class Population:
    """Seeded, realistic subjects with manager, peer and self assessments of every competency.

    Each person works at some level of their track (juniors are more common); their ratings
    scatter around that level's requirements, with person and competency offsets, rater noise,
    and the usual role biases (self-ratings run high). Person ``i`` is the same in every run.
    """

    def __init__(self, framework: Framework, seed: int, reference_time: datetime) -> None:
        self.framework = framework
        self.seed = seed
        self.reference_time = reference_time
        self.competencies = tuple(c.key for c in framework.competencies)
        self.tracks = tuple(sorted({lv.track for lv in framework.levels if lv.track}))
        self.paths = {track: level_path(framework, track) for track in self.tracks}
        required: dict[str, dict[str, int]] = {lv.key: {} for lv in framework.levels}
        for exp in framework.expectations:
            required[exp.level][exp.competency] = exp.required
        self.required = {
            level: tuple(float(req.get(c, 0)) or 1.0 for c in self.competencies)
            for level, req in required.items()
        }

    @staticmethod
    def ref(index: int) -> str:
        """The external_ref of person ``index``."""
        return f"bench-{index:07d}"

    def person(self, index: int) -> Person:
        """Person ``index``."""
        rng = random.Random(f"{self.seed}:{index}")
        # Most people are on the first track (the built-in ladder's "ic"), the rest spread out.
        track = self.tracks[0]
        if len(self.tracks) > 1 and rng.random() >= 0.65:
            track = rng.choice(self.tracks[1:])
        path = self.paths[track]
        position = rng.choices(range(len(path)), weights=range(len(path), 0, -1))[0]
        official = position
        draw = rng.random()
        if draw < 0.125 and position + 1 < len(path):
            official = position + 1
        elif draw < 0.25 and position > 0:
            official = position - 1
        skill = rng.gauss(0.0, 0.45)
        targets = tuple(
            base + skill + rng.gauss(0.0, 0.6) for base in self.required[path[position]]
        )
        return Person(index, self.ref(index), track, path[position], path[official], targets)

    def subject(self, index: int) -> dict[str, Any]:
        """The /v1/subjects item of person ``index``."""
        p = self.person(index)
        return {
            "external_ref": p.ref,
            "display_name": f"Bench Person {index}",
            "track": p.track,
            "current_level": p.official_level,
            "attributes": {
                "team": f"team-{index % 97:02d}",
                "location": ("BER", "NYC", "SFO")[index % 3],
            },
        }

    def assessments(self, index: int, cycle: int = 0) -> list[dict[str, Any]]:
        """Manager, peer and self assessments of every competency for person ``index``."""
        p = self.person(index)
        rng = random.Random(f"{self.seed}:{index}:{cycle}")
        items = []
        for role in RATER_ROLES:
            bias = {"manager": -0.1, "peer": 0.0, "self": 0.45}[role]
            rater = {
                "manager": f"mgr-{index // 8:06d}",
                "peer": f"peer-{rng.randrange(50_000):05d}",
                "self": p.ref,
            }[role]
            days_ago = rng.uniform(5, 120) + 60 * cycle
            at = self.reference_time - timedelta(days=days_ago, seconds=rng.randrange(86_400))
            items.append(
                {
                    "subject_ref": p.ref,
                    "framework": {"key": FRAMEWORK_KEY},
                    "rater_ref": rater,
                    "rater_role": role,
                    "assessed_at": at.replace(microsecond=0).isoformat(),
                    "ratings": [
                        {
                            "competency": key,
                            "proficiency": min(5, max(0, round(t + bias + rng.gauss(0, 0.5)))),
                        }
                        for key, t in zip(self.competencies, p.targets, strict=True)
                    ],
                }
            )
        return items


def now_utc() -> datetime:
    """Now, timezone-aware, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


def encode(items: Sequence[Any]) -> bytes:
    """A compact JSON array."""
    return json.dumps(items, separators=(",", ":")).encode()


# ---------------------------------------------------------------- HTTP


def server_seconds(response: httpx.Response) -> float:
    """The service's own time from ``Server-Timing: app;dur=<ms>``, in seconds (NaN if absent)."""
    match = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    return float(match[1]) / 1000 if match else float("nan")


@dataclass(frozen=True, slots=True)
class Timed:
    """One request: its response, client wall time and server time (seconds)."""

    response: httpx.Response
    wall: float
    server: float


def post(client: httpx.Client, path: str, body: bytes, expect: int = 201) -> Timed:
    """POST a JSON body; raise with the problem details unless the status is ``expect``."""
    started = time.perf_counter()
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    wall = time.perf_counter() - started
    if response.status_code != expect:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:2000]}")
    return Timed(response, wall, server_seconds(response))


def client_for(server: Server, token: str, timeout: float = 600) -> httpx.Client:
    """A keep-alive client with the tenant's key."""
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    )


@dataclass(frozen=True, slots=True)
class LoadStats:
    """What a data load sent and how long it took (client wall time)."""

    subjects: int
    assessments: int
    ratings: int
    seconds: float


def batches(start: int, stop: int, size: int) -> list[range]:
    """Consecutive ranges of at most ``size`` covering [start, stop)."""
    return [range(i, min(i + size, stop)) for i in range(start, stop, size)]


def load_population(
    server: Server,
    token: str,
    population: Population,
    start: int,
    stop: int,
    assessments_per_request: int = 10_000,
    analyze: Callable[[], None] | None = None,
    senders: int = 2,
) -> LoadStats:
    """Register persons [start, stop) and their three assessments through the bulk endpoints.

    Bodies are encoded and sent by ``senders`` threads, each with its own connection.
    ``analyze`` runs after the subjects and after a small first batch of assessments: on
    never-analyzed tables Postgres checks each foreign key by scanning the tenant's rows.
    """
    started = time.perf_counter()
    local = threading.local()
    clients: list[httpx.Client] = []

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = client_for(server, token)
            clients.append(local.client)
        return local.client  # type: ignore[no-any-return]

    def send_subjects(r: range) -> int:
        body = encode([population.subject(i) for i in r])
        return int(post(client(), "/v1/subjects/bulk", body).response.json()["created"])

    def send_assessments(r: range) -> int:
        body = encode([a for i in r for a in population.assessments(i)])
        return int(post(client(), "/v1/assessments/bulk", body).response.json()["created"])

    per_request = max(1, assessments_per_request // len(RATER_ROLES))
    first = min(stop, start + 100)
    total = (stop - start) * len(RATER_ROLES)
    try:
        for r in batches(start, stop, MAX_ITEMS_PER_REQUEST):
            send_subjects(r)
        if analyze is not None:
            analyze()
        sent = send_assessments(range(start, first))
        if analyze is not None:
            analyze()
        with ThreadPoolExecutor(max_workers=senders) as pool:
            for created in pool.map(send_assessments, batches(first, stop, per_request)):
                sent += created
                if sent == total or sent // 100_000 != (sent - created) // 100_000:
                    say(f"  {thousands(sent)}/{thousands(total)} assessments loaded")
    finally:
        for c in clients:
            c.close()
    n = stop - start
    return LoadStats(
        n,
        n * len(RATER_ROLES),
        n * len(RATER_ROLES) * len(population.competencies),
        time.perf_counter() - started,
    )


def populated(w: World, population: Population, subjects: int) -> tuple[list[str], Path]:
    """The world's tenant with ``subjects`` people of ``population`` loaded (three assessments
    each, through a loader service that is stopped afterwards), the database settled; their refs
    and a file of them, one per line, for wrk's round robin."""
    say(f"loading {thousands(subjects)} subjects with 3 assessments each ...")
    with ladder_server(loader_env(w), w.workdir, 2, "loader") as loader:
        loader.start()
        stats = load_population(loader, w.token, population, 0, subjects, analyze=w.db.analyze)
    say(f"  loaded {thousands(stats.ratings)} ratings in {stats.seconds:.1f} s")
    w.db.settle()
    refs = [population.ref(i) for i in range(subjects)]
    ids_file = w.workdir / "refs.txt"
    ids_file.write_text("\n".join(refs) + "\n")
    return refs, ids_file
