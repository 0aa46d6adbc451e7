"""The HTTP server as ``ladder serve`` runs it: uvicorn, made safe to expose without a proxy.

uvicorn's fast parser (httptools) puts no bound on a request's head: a 50 MB header is read
into memory, 20,000 headers are accepted, and a connection that never finishes its head (or
never sends anything) is held forever. ``GuardedHttpToolsProtocol`` adds, per connection:

- the request line and headers together at most ``HTTP_MAX_HEADER_BYTES``, and at most
  ``HTTP_MAX_HEADERS`` header fields: otherwise 431 and the connection is closed;
- the whole head within ``HTTP_HEADER_TIMEOUT_SECONDS`` of its first byte (or of the
  connection's start): otherwise 408 (or, if nothing was sent, a silent close);
- past ``HTTP_MAX_CONNECTIONS`` open connections (or requests in progress) per worker, a
  request is answered 503 problem+json with Retry-After (uvicorn's own ``limit_concurrency``,
  with the service's problem format instead of its plain text).

A body that arrives slowly is not timed out here (the app may be busy before it reads on, and
uvicorn then pauses reading); such connections count against ``HTTP_MAX_CONNECTIONS``.

uvicorn's ``timeout_keep_alive`` closes idle keep-alive connections after
``HTTP_KEEPALIVE_TIMEOUT_SECONDS``.

With several workers, uvicorn's parent process keeps the listening socket open while the workers
drain after SIGTERM, so new connections are queued by the kernel and then reset.
``DrainingMultiprocess`` closes the parent's copy first: once each worker has closed its own (the
first thing it does on SIGTERM), new connections are refused at once.
"""

import asyncio
import json
import socket
from typing import Any, cast

import httptools
import uvicorn
from starlette.types import Send
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from app.config import Settings, get_settings
from app.errors import problem_body, send_problem
from app.observability.logging import log_config
from app.observability.workers import forget_worker, metrics_directory

PROTOCOL = "app.server:GuardedHttpToolsProtocol"


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounds on the request head (size, count, time)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.max_head_bytes = settings.http_max_header_bytes
        self.max_headers = settings.http_max_headers
        self.head_timeout = settings.http_header_timeout_seconds
        self.max_connections = settings.http_max_connections
        self.limit_concurrency = None  # checked below, answered in the service's format
        self.reading_head = True  # between requests or inside a request's head
        self.head_bytes = 0  # bytes received while reading a head (bounds what the parser holds)
        self.head_size = 0  # size of the current head's line and fields, as parsed
        self.head_fields = 0
        self.head_timer: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is held no longer than an incomplete head.
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head:
            self.head_bytes += len(data)
            if self.head_timer is None:
                self._arm_head_timer()
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self.head_fields > self.max_headers:
                self._refuse_head(f"A request may have at most {self.max_headers} header fields.")
                return
            if self.head_size > self.max_head_bytes:
                self._refuse_head(self._size_detail())
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self.reading_head and self.head_bytes > self.max_head_bytes:
            self._refuse_head(self._size_detail())

    def _size_detail(self) -> str:
        return f"The request line and headers may take at most {self.max_head_bytes} bytes."

    def _refuse_head(self, detail: str) -> None:
        self._refuse(431, "header-fields-too-large", "Request header fields too large", detail)

    # -- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_fields = 0
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)
        if self.head_size > self.max_head_bytes:
            raise _HeadTooLarge
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_fields += 1
        self.head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self.head_fields > self.max_headers or self.head_size > self.max_head_bytes:
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self._cancel_head_timer()
        limit = self.max_connections
        if len(self.connections) < limit and len(self.tasks) < limit:
            super().on_headers_complete()
            return
        self.logger.warning("Exceeded HTTP_MAX_CONNECTIONS (%d).", limit)
        app, self.app = self.app, _overloaded
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What follows on this connection is the next request's head (or nothing: the
        # keep-alive timeout then closes the connection once the response is sent).
        self.reading_head = True
        self.head_bytes = 0

    # -- the head's deadline -------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.reading_head:
            return
        if self.head_bytes == 0:
            self.transport.close()  # nothing was asked: close like an idle keep-alive
            return
        self._refuse(
            408,
            "request-timeout",
            "Request timeout",
            f"The request line and headers must arrive within {self.head_timeout:g} s.",
        )

    def _refuse(self, status: int, slug: str, title: str, detail: str) -> None:
        """Answer a problem+json and close the connection (the request never reaches the app)."""
        self._cancel_head_timer()
        body = json.dumps(problem_body(status, slug=slug, title=title, detail=detail)).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/problem+json\r\n",
                b"x-content-type-options: nosniff\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


async def _overloaded(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """The answer to a request past HTTP_MAX_CONNECTIONS (it never reaches the app)."""
    problem = problem_body(
        503,
        slug="unavailable",
        title="Service unavailable",
        detail="This server has too many connections open right now; retry shortly.",
    )
    await send_problem(cast(Send, send), problem, [(b"retry-after", b"1")])


class DrainingMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, closing the parent's listening socket on SIGTERM/SIGINT,
    and dropping the live metrics of workers that are gone."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self._worker_pids: set[int] = set()

    def keep_subprocess_alive(self) -> None:
        # Called every half second, after any signal was handled: whichever way a worker went
        # (died, killed as hung, replaced on SIGHUP, retired on SIGTTOU), it is noticed here.
        super().keep_subprocess_alive()
        running = {p.pid for p in self.processes if p.pid is not None}
        for pid in self._worker_pids - running:
            forget_worker(pid)
        self._worker_pids = running

    def _stop_listening(self) -> None:
        # The workers close their copies as the first step of their own shutdown; the socket
        # stops listening once every copy is closed. Workers are not restarted from here on.
        for sock in self.sockets:
            sock.close()

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()


def http_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options that apply the HTTP limits and the log format of the settings."""
    return {
        "http": PROTOCOL,
        "timeout_keep_alive": settings.http_keepalive_timeout_seconds,
        "log_config": log_config(settings.log_format, settings.log_level),
        # The service writes its own request line (route templates, never paths with refs).
        "access_log": False,
    }


def run(app: str, **options: Any) -> None:
    """``uvicorn.run``, with the draining supervisor when there are several workers, and a
    metrics directory shared by the workers (see app/observability/workers.py)."""
    with metrics_directory():
        _run(app, **options)


def _run(app: str, **options: Any) -> None:
    if options.get("workers", 1) <= 1:
        uvicorn.run(app, **options)
        return
    # A worker that has not answered the supervisor's ping within this is killed and started
    # again; importing the app takes several seconds on a busy small machine, and uvicorn's 5 s
    # default then kills every worker before it serves (an endless restart loop).
    options.setdefault("timeout_worker_healthcheck", 60)
    config = Config(app, **options)
    sock = config.bind_socket()
    DrainingMultiprocess(config, sockets=[sock]).run()
