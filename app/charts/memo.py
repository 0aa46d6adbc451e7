"""Rendered score charts remembered per worker, under the score's ETag (issue 19).

Rendering costs far more than reading (vl-convert runs Vega's layout in JavaScript); the score
route already reads the subject's fingerprint on every request and names it in the ETag, so a
rendering remembered under that ETag (and the chart's level) is the one a new rendering would
give, checked against the database each time. The one part that moves with the clock, the
"as of" in the subtitle, is rendered as a placeholder and filled in per request for SVG; a PNG
cannot be filled in, so it is remembered per minute of the subtitle.
"""

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final
from xml.sax.saxutils import escape

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from app.charts import render
from app.charts.negotiate import SVG
from app.charts.style import moment_text

# A moment no score is read at in practice; when one is, filling in changes nothing.
PLACEHOLDER_AS_OF: Final = "1900-01-01T00:00:00+00:00"
# A quarter of the score memo's budget: an SVG is about 40 KB, a PNG ten times that.
SHARE_OF_SCORE_MEMO: Final = 4


class ChartMemo:
    """Rendered charts by key, least recently used dropped first, within a byte budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[Hashable, ...], bytes] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[Hashable, ...]) -> bytes | None:
        """The rendering under `key`, if remembered."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: tuple[Hashable, ...], content: bytes) -> None:
        """Remember a rendering, dropping the least recently used beyond the budget."""
        if not self.enabled or len(content) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= len(old)
        self._entries[key] = content
        self.bytes += len(content)
        while self.bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.bytes -= len(dropped)

    def forget(self, subject: tuple[Hashable, ...]) -> None:
        """Drop every rendering of one subject (keys start with it), e.g. once it is erased."""
        for key in [k for k in self._entries if k[: len(subject)] == subject]:
            self.bytes -= len(self._entries.pop(key))


def memo_of(app: FastAPI) -> ChartMemo:
    """This worker's chart memo, sized from (and off with) the score memo."""
    memo: ChartMemo | None = getattr(app.state, "chart_memo", None)
    if memo is None:
        memo = ChartMemo(app.state.score_memo.max_bytes // SHARE_OF_SCORE_MEMO)
        app.state.chart_memo = memo
    return memo


async def image(
    memo: ChartMemo,
    key: tuple[Hashable, ...],
    media: str,
    body: dict[str, Any],
    build: Callable[[dict[str, Any]], dict[str, Any]],
) -> bytes:
    """The chart of `body` as SVG or PNG, rendered only when `key` has none remembered.

    `key` must name everything the chart shows except the moment: the subject, the score's
    ETag and the chart's own parameters.
    """
    shown = moment_text(body.get("as_of"))
    if media == SVG:
        template = memo.get((*key, media))
        if template is None:
            spec = build({**body, "as_of": PLACEHOLDER_AS_OF})
            template = await run_in_threadpool(render.render, spec, "svg")
            memo.put((*key, media), template)
        placeholder = escape(moment_text(PLACEHOLDER_AS_OF)).encode()
        return template.replace(placeholder, escape(shown).encode())
    png = memo.get((*key, media, shown))
    if png is None:
        png = await run_in_threadpool(render.render, build(body), "png")
        memo.put((*key, media, shown), png)
    return png
