"""Which representation a request asks for (`Accept`, q-values honoured), and answering in it.

JSON stays the default: no `Accept`, `*/*` or `application/json` get the route's JSON unchanged.
A chart media type gets the chart built from that same JSON, so both show the same numbers.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from app.charts import render
from app.errors import NotAcceptable, error_responses

JSON: Final = "application/json"
VEGA_LITE: Final = "application/vnd.vegalite.v5+json"
SVG: Final = "image/svg+xml"
PNG: Final = "image/png"
# In order of preference when an Accept header likes several equally (e.g. `*/*`).
CHART_TYPES: Final = (JSON, VEGA_LITE, SVG, PNG)
# Each representation has its own ETag: the JSON's, with this suffix inside the quotes.
ETAG_SUFFIX: Final = {VEGA_LITE: "vl", SVG: "svg", PNG: "png"}
VARY: Final = {"Vary": "Accept"}
SpecBuilder = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class MediaRange:
    type: str
    subtype: str
    q: float

    def specificity(self, media: str) -> int | None:
        """How closely this range names `media` (2 exactly, 1 by `type/*`, 0 by `*/*`), or None."""
        kind, sub = media.split("/", 1)
        if self.type == "*":
            return 0
        if self.type != kind:
            return None
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == sub else None


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header; malformed ranges are skipped (RFC 9110 12.5.1)."""
    ranges = []
    for item in header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub or (kind == "*" and sub != "*"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            ranges.append(MediaRange(kind, sub, q))
    return ranges


def choose(accept: str | None, available: Sequence[str] = CHART_TYPES) -> str | None:
    """The available media type the header prefers (the first of a tie), None if none is wanted.

    Each type takes the q of the most specific range that names it; q=0 means "not this".
    A header with no valid range at all is treated as absent: the default, JSON.
    """
    ranges = parse_accept(accept) if accept else []
    if not ranges:
        return available[0]
    best: tuple[float, str] | None = None
    for media in available:
        matches = [(s, r.q) for r in ranges if (s := r.specificity(media)) is not None]
        if not matches:
            continue
        q = max(matches)[1]
        if q > 0 and (best is None or q > best[0]):
            best = (q, media)
    return best[1] if best else None


def representation(request: Request, available: Sequence[str] = CHART_TYPES) -> str:
    """The media type to answer in; 406 (listing the available ones) when none is acceptable."""
    media = choose(request.headers.get("accept"), available)
    if media is None:
        raise NotAcceptable(
            "This operation answers in " + ", ".join(available) + "; send one in Accept.",
            available=available,
        )
    return media


def representation_etag(etag: str, media: str) -> str:
    """The ETag of the JSON made specific to a representation (the JSON keeps its own)."""
    suffix = ETAG_SUFFIX.get(media)
    return etag if suffix is None else f'{etag[:-1]}.{suffix}"'


def json_if_none_match(if_none_match: str | None, media: str) -> str | None:
    """The If-None-Match the JSON read should see: only the tags of this representation, unsuffixed.

    A chart's ETag must not match the JSON's (or another chart's), or a 304 would tell a cache
    to reuse a body of the wrong media type.
    """
    suffix = ETAG_SUFFIX.get(media)
    if if_none_match is None or suffix is None or if_none_match.strip() == "*":
        return if_none_match
    end = f'.{suffix}"'
    kept = [t.strip() for t in if_none_match.split(",") if t.strip().endswith(end)]
    return ", ".join(tag[: -len(end)] + '"' for tag in kept) or None


async def chart(
    media: str, body: dict[str, Any], build: SpecBuilder, headers: dict[str, str] | None = None
) -> Response:
    """The chart of `body` in a chart media type: the spec, or its rendering off the event loop."""
    answer_headers = {**VARY, **(headers or {})}
    # A cohort's spec is built from tens of megabytes of answer: off the event loop, like rendering.
    spec = await run_in_threadpool(build, body)
    if media == VEGA_LITE:
        return Response(render.spec_bytes(spec), media_type=VEGA_LITE, headers=answer_headers)
    image: render.ImageFormat = "svg" if media == SVG else "png"
    content = await run_in_threadpool(render.render, spec, image)
    return Response(content, media_type=media, headers=answer_headers)


async def chart_or_json(
    request: Request,
    body: Any,
    build: SpecBuilder,
    *,
    media: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The route's answer in the representation `Accept` asks for.

    `body` is the JSON answer: a pydantic model, its dumped dict, or JSON bytes. JSON is sent
    as the route would send it anyway; charts are built from the same values.
    """
    media = media or representation(request)
    if media == JSON:
        content = body if isinstance(body, bytes) else _json_bytes(body)
        return Response(content, media_type=JSON, headers={**VARY, **(headers or {})})
    return await chart(media, _plain(body), build, headers)


def _json_bytes(body: Any) -> bytes:
    if hasattr(body, "model_dump_json"):
        dumped: str = body.model_dump_json()
        return dumped.encode()
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _plain(body: Any) -> Any:
    if isinstance(body, bytes):
        return json.loads(body)
    if hasattr(body, "model_dump"):
        return body.model_dump(mode="json")
    return body


def chart_responses(
    description: str = "The resource as JSON, or as a chart of the same numbers (by Accept).",
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries: the chart media types beside JSON on 200, and the 406."""
    return {
        200: {
            "description": description,
            "headers": {
                "Vary": {
                    "description": "Accept: the representation depends on it.",
                    "schema": {"type": "string"},
                }
            },
            "content": {
                VEGA_LITE: {
                    "schema": {
                        "type": "object",
                        "description": "A Vega-Lite v5 specification with the data inlined.",
                    }
                },
                SVG: {"schema": {"type": "string", "description": "The chart as an SVG image."}},
                PNG: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **error_responses(406),
    }
