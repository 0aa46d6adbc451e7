"""OpenTelemetry traces: off by default, on by the standard OTEL_* variables; a caller's
``traceparent`` continues its trace, the request span holds its database spans, and no span
carries a person's ref or a statement's parameters."""

import gzip
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.main import create_app
from app.observability import tracing
from app.observability.tracing import shutdown_tracing, tracing_requested
from tests.conftest import Database, Tenant

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
REF = "trace-person-4711"


def test_off_unless_the_environment_asks() -> None:
    assert not tracing_requested({})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing_requested(
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}
    )
    assert not tracing_requested({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert create_app().state.tracer_provider is None


def test_an_exporter_or_protocol_not_shipped_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="zipkin"):
        create_app()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(ValueError, match="grpc"):
        create_app()


@dataclass
class Traced:
    app: Any
    client: httpx.AsyncClient
    exporter: InMemorySpanExporter

    def spans(self) -> Sequence[ReadableSpan]:
        self.app.state.tracer_provider.force_flush()
        return self.exporter.get_finished_spans()


@pytest.fixture
async def traced(
    monkeypatch: pytest.MonkeyPatch,
    database: Database,
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Traced]:
    """The app as the environment switches tracing on, its spans kept in memory."""
    if database.backend != "postgres":
        pytest.skip("database spans come from the asyncpg driver")
    exporter = InMemorySpanExporter()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setattr(tracing, "_exporter_from", lambda _environ: exporter)
    app = create_app(settings)
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Traced(app, client, exporter)
    shutdown_tracing(app.state.tracer_provider)


def _all_attribute_values(spans: Any) -> list[str]:
    return [str(value) for span in spans for value in (span.attributes or {}).values()]


async def test_traceparent_continues_the_trace_with_database_spans_inside(
    traced: Traced, tenant_a: Tenant
) -> None:
    r = await traced.client.post(
        "/v1/subjects", json={"external_ref": REF}, headers=tenant_a.headers
    )
    assert r.status_code == 201, r.text
    traced.spans()
    traced.exporter.clear()

    r = await traced.client.get(
        f"/v1/subjects/{REF}",
        headers={**tenant_a.headers, "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"},
    )
    assert r.status_code == 200, r.text
    spans = traced.spans()
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in spans]
    server = servers[0]
    assert server.name == "GET /v1/subjects/{ref}"
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == CALLER_SPAN_ID
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/subjects/{ref}"

    database_spans = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert database_spans, [s.name for s in spans]
    for span in database_spans:
        assert span.context.trace_id == server.context.trace_id
        assert span.parent is not None and span.parent.span_id == server.context.span_id
    statements = [str((s.attributes or {}).get("db.statement", "")) for s in database_spans]
    assert any("FROM subject" in statement for statement in statements), statements

    # No span names the person: not the raw path, not a statement's parameters.
    assert not any(REF in value for value in _all_attribute_values(spans))
    assert not any(REF in span.name for span in spans)


async def test_an_unmatched_path_is_not_recorded(traced: Traced, tenant_a: Tenant) -> None:
    r = await traced.client.get(f"/v1/people/{REF}?ref={REF}", headers=tenant_a.headers)
    assert r.status_code == 404
    spans = traced.spans()
    assert [s.name for s in spans if s.kind == SpanKind.SERVER] == ["GET"]
    assert not any(REF in value for value in _all_attribute_values(spans))


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


async def test_otlp_endpoint_in_the_environment_exports_over_http(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_a: Tenant,
) -> None:
    collector = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    _Collector.received = []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "ladder-under-test")
    app = create_app(settings)
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/v1/frameworks", headers=tenant_a.headers)
            assert r.status_code == 200, r.text
    finally:
        shutdown_tracing(app.state.tracer_provider)  # exports the batch
        collector.shutdown()
        collector.server_close()
    # The batch processor also exports on its own timer (5 s by default), so a slow machine
    # may see the spans in more than one export; each is an OTLP/HTTP post to /v1/traces.
    paths = [path for path, _ in _Collector.received]
    assert paths and set(paths) == {"/v1/traces"}, paths
    names: list[str] = []
    for _, body in _Collector.received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert service["service.name"] == "ladder-under-test"
            names += [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert "GET /v1/frameworks" in names
