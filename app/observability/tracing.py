"""OpenTelemetry traces: a span per request and one per database statement, off by default.

The standard ``OTEL_*`` environment switches them on, so an operator configures this service
like any other: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) set, or
``OTEL_TRACES_EXPORTER=otlp`` (``console`` prints spans, for debugging). ``OTEL_SDK_DISABLED=true``
or ``OTEL_TRACES_EXPORTER=none`` keeps them off. The rest of the standard variables work as the
SDK documents them (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_EXPORTER_OTLP_HEADERS``, ...). Export is OTLP over HTTP (protobuf), in batches off the
request path. A W3C ``traceparent`` header continues the caller's trace.

No personal data leaves in a span: the request span names the route template
(``GET /v1/subjects/{ref}/score``), and the attributes that carry the raw path, query or the
client's address are replaced before the span is exported; database spans carry the statement
with its placeholders, never its parameters.
"""

import os
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span

DEFAULT_SERVICE_NAME = "competency-ladder"
SUPPORTED_EXPORTERS = ("otlp", "console")
SUPPORTED_PROTOCOL = "http/protobuf"

# Probes, metrics and the docs are not worth a trace each (regexes on the full URL, no commas).
EXCLUDED_URLS = r"://[^/]+/(healthz|readyz|metrics|docs|redoc|openapi\.json|_static/)"

# Attributes of the server span that hold the raw path (which may carry a subject's ref), the
# query string, or the client's address, in the old and the stable HTTP conventions.
PATH_ATTRIBUTES = ("http.target", "url.path", "http.url", "url.full")
WITHHELD_ATTRIBUTES = (
    "url.query",
    "net.peer.ip",
    "net.sock.peer.addr",
    "client.address",
    "http.client_ip",
)
WITHHELD = "withheld"


def _enabled(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def tracing_requested(environ: Mapping[str, str]) -> bool:
    """True when the environment asks for traces (see the module's docstring)."""
    if _enabled(environ.get("OTEL_SDK_DISABLED")):
        return False
    exporter = (environ.get("OTEL_TRACES_EXPORTER") or "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _exporter_from(environ: Mapping[str, str]) -> SpanExporter:
    """The exporter the environment names; refuses, at start, one this service does not ship."""
    name = (environ.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower()
    if name not in SUPPORTED_EXPORTERS:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={name!r} is not available here; use one of "
            f"{', '.join(SUPPORTED_EXPORTERS)} or none"
        )
    if name == "console":
        return ConsoleSpanExporter()
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or SUPPORTED_PROTOCOL
    )
    if protocol.strip().lower() != SUPPORTED_PROTOCOL:
        raise ValueError(
            f"OTLP protocol {protocol!r} is not available here; this service exports "
            f"{SUPPORTED_PROTOCOL} (the collector's HTTP port, 4318 by default)"
        )
    # The exporter reads its endpoint, headers, timeout and compression from OTEL_EXPORTER_OTLP_*.
    return OTLPSpanExporter()


def _resource() -> Resource:
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _withhold_personal_data(span: Span, _scope: dict[str, Any]) -> None:
    """Replace the raw path, query and client address of the request span (see the docstring)."""
    if not span.is_recording():
        return
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    route = str(attributes.get("http.route") or "unmatched")
    for key in PATH_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, route)
    for key in WITHHELD_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, WITHHELD)


def install_tracing(app: FastAPI) -> TracerProvider | None:
    """Trace the app's requests and its asyncpg statements when the environment asks for it.
    Call it before anything else wraps the app's middleware stack. Returns the provider."""
    if not tracing_requested(os.environ):
        return None
    provider = TracerProvider(resource=_resource())
    provider.add_span_processor(BatchSpanProcessor(_exporter_from(os.environ)))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        # Metrics are Prometheus' job here (/metrics); the instrumentation's own stay off.
        meter_provider=NoOpMeterProvider(),
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
        server_request_hook=_withhold_personal_data,
    )
    # asyncpg serves both the SQLAlchemy engine and any raw reads; instrumenting the driver
    # covers every statement once. It patches the driver for the whole process.
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    return provider


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Export what is still buffered and stop tracing the driver."""
    if provider is None:
        return
    provider.shutdown()
    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
