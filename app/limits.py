"""Request-level guards and measurements, in one middleware: response headers, body size
limit, invalid Unicode, server timing."""

import time
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import unicode
from app.errors import InvalidInput, problem_body, refuse_invalid_input, send_problem

BODYLESS_METHODS = ("GET", "HEAD", "OPTIONS", "DELETE")

# A header a protocol requires on every answer under a path prefix, made from the request's
# headers (e.g. xAPI's version header under /xapi/).
ProtocolHeader = Callable[[dict[bytes, bytes]], tuple[bytes, bytes]]


class _TooLarge(Exception):
    """The body grew past its limit while it was read."""


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body (None if the client went away); _TooLarge past ``limit``.

    A body that came as one message is returned as it is, without a copy: the bulk routes'
    bodies are tens of megabytes, and every copy is a worker's memory.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body: bytes = message.get("body", b"")
        size += len(body)
        if limit is not None and size > limit:
            raise _TooLarge
        chunks.append(body)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replaying(whole: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then defers to the client's."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": whole, "more_body": False}
        return await receive()

    return replay


# Every response: browsers must not guess a type (a JSON error rendered as HTML). Responses of
# the API carry personal data (names, ratings, levels), so no cache keeps them; the docs, the
# OpenAPI document, the static assets and the health probes may be cached.
NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
PRIVATE_PREFIXES = ("/v1/", "/ims/")


class RequestGuards:
    """The guards and response headers of every request, in one layer (one frame and one
    ``send`` wrapper per request instead of four):

    - ``X-Content-Type-Options: nosniff`` on every response, ``Cache-Control: no-store`` on the
      API's (whatever the app set);
    - bodies over ``max_bytes`` (or the path's override) refused with 413, with or without a
      Content-Length: bodies are read in full before the app runs (they are small by contract),
      so a chunked body that grows past the limit is refused like one that declares its size;
    - 422 for a query or body holding text UTF-8 cannot encode, before any route: such text
      would make storing or answering fail, possibly after the request's transaction committed
      (also for routes that read the raw body: bulk NDJSON, framework files, CASE packages);
    - ``Server-Timing: app;dur=<ms>``: the time the app spent once the body was read, for
      clients and benchmarks;
    - the header a protocol requires on every answer under its prefix (``protocol_headers``),
      refusals made here included;
    - HEAD wherever GET is routed (RFC 9110 requires it of a general-purpose server): the
      request is routed as the GET it mirrors, and its answer keeps GET's headers, Content-Length
      included, without the content.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        overrides: dict[str, int] | None = None,
        protocol_headers: Mapping[str, ProtocolHeader] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}
        self.protocol_headers = dict(protocol_headers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            await self._head(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        private = path.startswith(PRIVATE_PREFIXES)
        protocol = next(
            (make for prefix, make in self.protocol_headers.items() if path.startswith(prefix)),
            None,
        )
        started = 0.0  # set once the body is read: refusals before that carry no timing

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if (name := k.lower()) != b"x-content-type-options"
                    and not (private and name == b"cache-control")
                ]
                headers.append(NOSNIFF)
                if private:
                    headers.append(NO_STORE)
                if protocol is not None:
                    required = protocol(dict(scope["headers"]))
                    headers = [(k, v) for k, v in headers if k.lower() != required[0]]
                    headers.append(required)
                if started:
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    headers.append((b"server-timing", f"app;dur={elapsed_ms:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] not in BODYLESS_METHODS:
            limit = self.overrides.get(scope["path"], self.max_bytes)
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None:
                try:
                    too_big = int(declared) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse_size(scope, guarded, limit)
                    return
            try:
                whole = await read_body(receive, limit)
            except _TooLarge:
                await self._refuse_size(scope, guarded, limit)
                return
            if whole is None:
                return  # the client went away
            receive = replaying(whole, receive)
        else:
            whole = None
        started = time.perf_counter()
        try:
            unicode.check_query(scope.get("query_string", b""))
            if whole is not None:
                content_type = dict(scope["headers"]).get(b"content-type", b"")
                unicode.check_body(whole, content_type.decode("latin-1"))
        except InvalidInput as exc:
            await self._refuse_invalid(scope, receive, guarded, exc)
            return
        await self.app(scope, receive, guarded)

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer HEAD as the GET it mirrors, without content.

        The scope the routes see says GET; the server's own scope keeps HEAD, so the request line
        and metrics name the method asked for (with the route GET matched).
        """
        mirrored = {**scope, "method": "GET"}

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self(mirrored, receive, headless)
        finally:
            if "route" in mirrored:
                scope["route"] = mirrored["route"]

    async def _refuse_size(self, scope: Scope, send: Send, limit: int) -> None:
        problem = problem_body(
            413,
            slug="payload-too-large",
            title="Payload too large",
            detail=f"The request body exceeds {limit} bytes.",
        )
        await send_problem(send, {**problem, "instance": scope.get("path", "")})

    async def _refuse_invalid(
        self, scope: Scope, receive: Receive, send: Send, exc: InvalidInput
    ) -> None:
        if not any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes):
            await self.app(scope, receive, send)  # no such route or method: its 404 or 405
            return
        response = await refuse_invalid_input(Request(scope), exc)
        await response(scope, receive, send)
