"""Log lines as operators read them: JSON (one object a line) or text for a terminal.

Every line, the app's and uvicorn's alike, goes through one handler on the root logger, and
carries the id of the request it was written for (and the caller's tenant and key ids once
known, and the trace and span ids when traces are on). The request line itself is written by ``app.observability.middleware``.

python-json-logger does the JSON encoding: it turns a record's ``extra`` fields, exceptions and
values such as UUIDs and datetimes into JSON, and plugs into ``logging.config`` as uvicorn's
``log_config`` expects, which a hand-written formatter would have to redo.
"""

import logging
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from app.observability.context import current, current_trace

LogFormat = Literal["json", "text"]

# uvicorn adds an ANSI-coloured copy of some messages; it has no place in a JSON line.
_SKIPPED = [*RESERVED_ATTRS, "color_message"]


def _context_fields() -> dict[str, str]:
    fields: dict[str, str] = {}
    ctx = current()
    if ctx is not None:
        fields["request_id"] = ctx.request_id
        if ctx.tenant_id is not None:
            fields["tenant_id"] = str(ctx.tenant_id)
        if ctx.key_id is not None:
            fields["key_id"] = str(ctx.key_id)
    # With traces on (OTEL_* settings), the trace a line belongs to, to open it in the tracer.
    ids = current_trace()
    if ids is None and ctx is not None and ctx.trace_id is not None:
        ids = ctx.trace_id, ctx.span_id or ""
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time, level, logger, message, request context, extra fields."""

    def __init__(self) -> None:
        # A record otherwise looks up its thread, process and multiprocessing names each time
        # (documented switches); no line shows them, and the request line is on the hot path.
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=_SKIPPED,
            timestamp="time",
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.update(_context_fields())


class TextFormatter(logging.Formatter):
    """``time level logger: message [request id]`` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = current()
        return f"{line} [{ctx.request_id}]" if ctx is not None else line


FORMATTERS: dict[LogFormat, type[logging.Formatter]] = {
    "json": JsonFormatter,
    "text": TextFormatter,
}


def log_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's ``log_config``: every logger, one format.

    uvicorn's access log is not used: the service writes its own request line (with the route
    template instead of the path, which holds people's refs).
    """
    formatter = FORMATTERS[log_format]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
