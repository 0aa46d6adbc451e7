"""Request heads and slow clients against a real ``ladder serve`` on loopback, over raw sockets.

The server runs on a SQLite file (only ``/healthz`` is asked, which never touches the database)
with short limits set through its documented settings, so every loop here is bounded by a few
seconds.
"""

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fault.appserver import AppServer, app_env

HEADER_TIMEOUT = 1.0
KEEPALIVE = 1
MAX_CONNECTIONS = 20
MAX_HEADER_BYTES = 16_384
MAX_HEADERS = 50
MARGIN = 3.0  # scheduling slack on a busy 2-core machine; the limits are what is tested


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    workdir = tmp_path_factory.mktemp("http-limits")
    env = app_env(
        f"sqlite+aiosqlite:///{workdir / 'ladder.db'}",
        LOAD_BUILTIN_FRAMEWORKS="false",
        WEBHOOKS_ENABLED="false",
        HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        HTTP_KEEPALIVE_TIMEOUT_SECONDS=str(KEEPALIVE),
        HTTP_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        HTTP_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
        HTTP_MAX_HEADERS=str(MAX_HEADERS),
    )
    srv = AppServer(workdir, env, Path(workdir) / "server.log")
    srv.start()
    yield srv
    srv.stop()


def connect(server: AppServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response[9:12])


def send_head(server: AppServer, head: bytes) -> bytes:
    """Send a request head as fast as the server takes it; return the answer."""
    with connect(server) as sock:
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < len(head):
                sent += sock.send(head[sent : sent + 65536])
        return read_until_closed(sock, 5)


def still_serves(server: AppServer) -> None:
    assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("size", [MAX_HEADER_BYTES + 1, 1_000_000])
def test_a_large_header_is_refused_with_431(server: AppServer, size: int) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    response = send_head(server, head)
    assert status_of(response) == 431
    assert b"application/problem+json" in response
    assert b"header-fields-too-large" in response
    assert b"x-content-type-options: nosniff" in response
    still_serves(server)


def test_a_header_just_under_the_limit_is_served(server: AppServer) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES - 200)
    response = send_head(server, head + b"\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 200


def test_a_50_mb_header_is_cut_off_early(server: AppServer) -> None:
    """The server answers 431 and closes long before 50 MB have been sent."""
    chunk = b"a" * 65536
    sent = 0
    began = time.monotonic()
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
            while sent < 50_000_000 and time.monotonic() - began < 20:
                sent += sock.send(chunk)
        response = read_until_closed(sock, 5)
    assert sent < 5_000_000, f"the server read {sent} bytes of one header"
    if response:  # the 431 may be lost to the reset that refusing the rest of the upload causes
        assert status_of(response) == 431
    still_serves(server)


@pytest.mark.parametrize("count", [MAX_HEADERS + 1, 20_000])
def test_too_many_headers_are_refused_with_431(server: AppServer, count: int) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    head += b"".join(b"X-%d: 1\r\n" % i for i in range(count)) + b"\r\n"
    response = send_head(server, head)
    assert status_of(response) == 431
    still_serves(server)


def test_headers_up_to_the_count_are_served(server: AppServer) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS - 2)) + b"\r\n"
    assert status_of(send_head(server, head)) == 200


def test_slow_heads_are_timed_out_with_408(server: AppServer) -> None:
    """Slowloris: connections that drip their head byte by byte are answered 408 and closed."""
    socks = [connect(server) for _ in range(10)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        began = time.monotonic()
        closed_at: dict[int, float] = {}
        answers: dict[int, bytes] = {}
        for sock in socks:
            sock.setblocking(False)
        while len(closed_at) < len(socks) and time.monotonic() - began < HEADER_TIMEOUT + MARGIN:
            for i, sock in enumerate(socks):
                if i in closed_at:
                    continue
                with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                    sock.send(b"X")  # one more byte of a header that never ends
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                answers[i] = answers.get(i, b"") + data
                if not data or b"\r\n\r\n" in answers[i]:
                    closed_at[i] = time.monotonic() - began
            time.sleep(0.1)
        assert len(closed_at) == len(socks), f"held open past the timeout: {closed_at}"
        assert max(closed_at.values()) <= HEADER_TIMEOUT + MARGIN
        assert all(status_of(a) == 408 for a in answers.values() if a), answers
    finally:
        for sock in socks:
            sock.close()
    still_serves(server)


def test_a_silent_connection_is_closed(server: AppServer) -> None:
    with connect(server) as sock:
        began = time.monotonic()
        assert read_until_closed(sock, HEADER_TIMEOUT + MARGIN) == b""
        assert time.monotonic() - began < HEADER_TIMEOUT + MARGIN


def test_an_idle_keep_alive_connection_is_closed(server: AppServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        began = time.monotonic()
        response = read_until_closed(sock, KEEPALIVE + MARGIN)
        assert status_of(response) == 200
        assert time.monotonic() - began < KEEPALIVE + MARGIN, "the keep-alive was never closed"


def test_connections_per_worker_are_bounded(server: AppServer) -> None:
    """Past HTTP_MAX_CONNECTIONS open connections, a request is answered 503 at once."""
    held = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # every connection accepted by the server (none sent anything yet)
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            response = read_until_closed(sock, 5)
            assert status_of(response) == 503
            assert b"application/problem+json" in response
            assert b"retry-after: 1" in response
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    still_serves(server)


def test_pipelined_requests_and_bodies_are_served(server: AppServer) -> None:
    """The per-request head accounting restarts for each request on a connection."""
    body = b'{"external_ref": "x"}' + b" " * 40_000  # a body larger than the head limit
    post = (
        b"POST /v1/subjects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(get * 3 + post + get + b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        response = read_until_closed(sock, 5)
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", response)]
    assert statuses == [200, 200, 200, 401, 200, 200], response[:2000]
