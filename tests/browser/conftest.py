"""A real server on a loopback port and Debian's headless Chromium, for tests that drive the UI."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from app.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Screenshots go where a person can open them after the run (git-ignored), not into tmp_path.
OUTPUT_DIR = PROJECT_ROOT / "test-output" / "browser"
# The flags this machine needs: no sandbox as root, and no background calls to Google's hosts,
# which the closed network refuses (and which a test must never depend on anyway).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1600",
)
SERVER_START_SECONDS = 30.0
# The `ladder` command of this interpreter's environment, run as a user would.
LADDER = (sys.executable, "-m", "app.cli")
_screenshots = pytest.StashKey[list[Path]]()
_call_report = pytest.StashKey[pytest.TestReport]()


def _browser_missing() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"


BROWSER_MISSING = _browser_missing()
# Skipped on a developer's machine without the browser; CI installs it, so there it must run.
needs_browser = pytest.mark.skipif(
    BROWSER_MISSING is not None and not os.environ.get("CI"), reason=BROWSER_MISSING or ""
)


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    admin_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


def _ladder(*args: str, env: dict[str, str]) -> str:
    """Run the real `ladder` command and return what it printed."""
    done = subprocess.run(
        [*LADDER, *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"ladder {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_live(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"server not live after {SERVER_START_SECONDS:.0f}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`ladder serve` on a free loopback port, over a fresh SQLite file migrated by `ladder migrate`."""
    folder = tmp_path_factory.mktemp("live-server")
    url = f"sqlite+aiosqlite:///{folder / 'ladder.db'}"
    # Whatever the caller's environment or .env says, this server uses its own database and docs.
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MIGRATION_DATABASE_URL": url,
        "ENVIRONMENT": "test",
        "LOAD_BUILTIN_FRAMEWORKS": "true",
        "DOCS_ENABLED": "true",
    }
    _ladder("migrate", env=env)
    admin_key = _ladder("create-tenant", "browser", env=env).strip()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*LADDER, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_live(base_url, server, log)
        yield LiveServer(base_url, admin_key)
    finally:
        server.terminate()
        try:
            server.wait(timeout=25)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def chrome(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium through Debian's chromedriver; a screenshot is kept if the test fails."""
    if BROWSER_MISSING:
        pytest.fail(f"CI must install the browser: {BROWSER_MISSING}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never runs, so nothing is downloaded.
    driver = webdriver.Chrome(
        service=Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log")),
        options=options,
    )
    try:
        yield driver
        report = request.node.stash.get(_call_report, None)
        if report is not None and report.failed:
            save_screenshot(request.config, driver, f"FAILED-{request.node.name}.png")
    finally:
        driver.quit()


def save_screenshot(config: pytest.Config, driver: webdriver.Chrome, name: str) -> Path:
    """Write the browser's viewport to test-output/browser/NAME and list it in the run's summary."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / name
    assert driver.save_screenshot(str(path)), f"Chromium wrote no screenshot to {path}"
    config.stash.setdefault(_screenshots, []).append(path)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each test's call report, so the `chrome` fixture knows whether the test failed."""
    report = yield
    if report.when == "call":
        item.stash[_call_report] = report
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Name the screenshots at the end of the run, so people know where to look."""
    paths = config.stash.get(_screenshots, [])
    if paths:
        terminalreporter.write_sep("-", "browser screenshots")
        for path in paths:
            terminalreporter.write_line(str(path.relative_to(PROJECT_ROOT)))
