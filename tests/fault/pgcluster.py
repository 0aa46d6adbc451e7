"""A throwaway Postgres cluster of the test's own: initdb and pg_ctl into a temporary folder.

Never touches the machine's shared server: the cluster has its own data directory, its own free
port on 127.0.0.1 and its own Unix socket directory. When the test runs as root (initdb refuses
to), the binaries run as the ``postgres`` OS user through ``runuser`` and the folder is handed to
that user.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("FAULT_PG_BIN", "/usr/lib/postgresql/15/bin"))
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")


def missing_binaries() -> list[str]:
    """The Postgres programs this harness needs that are not installed."""
    return [name for name in REQUIRED_BINARIES if not (PG_BIN / name).is_file()]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _process_exists(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; empty elsewhere)."""
    out = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(entry.name))
    return out


class PgCluster:
    """One private cluster: start, fast restart, SIGKILL of the postmaster, stop, remove."""

    def __init__(self) -> None:
        self.as_postgres_user = os.geteuid() == 0
        self.base = Path(tempfile.mkdtemp(prefix="ladder-fault-pg-"))
        if self.as_postgres_user:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.base, ignore_errors=True)
                raise RuntimeError(
                    "running as root, and initdb refuses root: an OS user 'postgres' is needed "
                    "to own the throwaway cluster (or run the tests as a non-root user)"
                ) from None
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        self.options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    # -- running the binaries -------------------------------------------------------------

    def _argv(self, program: str, *args: str) -> list[str]:
        argv = [str(PG_BIN / program), *args]
        if self.as_postgres_user:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(
        self, program: str, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        # Output goes to a file, never a pipe: a postmaster that pg_ctl forks could inherit a
        # pipe and keep it open, and reading it to the end would then wait forever.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                self._argv(program, *args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            out.seek(0)
            output = out.read()
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({proc.returncode}):\n{output}\n"
                f"--- postgres log tail ---\n{self.log_tail()}"
            )
        return subprocess.CompletedProcess(proc.args, proc.returncode, output, "")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- lifecycle --------------------------------------------------------------------------

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8"
        )

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", self.options, "-l", str(self.log),
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def restart_fast(self) -> None:
        """``pg_ctl restart -m fast``: sessions are terminated, the same options are reused."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", self.options, "-l", str(self.log),
            "-m", "fast", "-w", "-t", "30", "restart",
        )  # fmt: skip

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _is_our_postmaster(self, pid: int) -> bool:
        """Guard against a stale pid file naming a reused pid: a postmaster runs in its data
        directory (its command line need not name it: ``pg_ctl restart`` passes PGDATA)."""
        try:
            return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == self.data.resolve()
        except OSError:
            return False

    def kill_hard(self, timeout: float = 15) -> None:
        """SIGKILL the postmaster, then wait until it and every child of it are gone."""
        pid = self.postmaster_pid()
        if pid is None or not self._is_our_postmaster(pid):
            raise RuntimeError(f"no live postmaster of {self.data} (pid file: {pid})")
        children = _children_of(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for p in [pid, *children]:
            while _process_exists(p):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres process {p} survived SIGKILL of the postmaster")
                time.sleep(0.05)

    def _all_pids(self) -> list[int]:
        pid = self.postmaster_pid()
        if pid is None or not self._is_our_postmaster(pid):
            raise RuntimeError(f"no live postmaster of {self.data} (pid file: {pid})")
        return [pid, *_children_of(pid)]

    def freeze(self) -> list[int]:
        """SIGSTOP the postmaster and every backend: a hung server (TCP still accepts)."""
        pids = self._all_pids()
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGSTOP)
        return pids

    @staticmethod
    def thaw(pids: list[int]) -> None:
        """SIGCONT what ``freeze`` stopped. Never raises."""
        for p in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGCONT)

    def start_after_crash(self, timeout: float = 30) -> int:
        """Start again after a SIGKILL (crash recovery); returns the attempts it took.

        The stale ``postmaster.pid`` is left in place on purpose: Postgres itself decides it is
        stale. A start can be refused while the old shared memory is still attached, so retry.
        """
        deadline = time.monotonic() + timeout
        attempts = 0
        while True:
            attempts += 1
            try:
                self.start()
                return attempts
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def stop(self) -> None:
        """Stop at once (``-m immediate``); SIGKILL whatever is left. Never raises."""
        try:
            if self.data.exists():
                self._run(
                    "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "15", "stop",
                    check=False, timeout=30,
                )  # fmt: skip
        except subprocess.TimeoutExpired:
            pass
        pid = self.postmaster_pid()
        if pid is not None and _process_exists(pid):
            with contextlib.suppress(RuntimeError, ProcessLookupError):
                self.kill_hard()

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
