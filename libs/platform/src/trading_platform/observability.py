"""Observability: structlog JSON logs carrying the current trace and span ids, OpenTelemetry tracing (spans to a
JSON-lines file when configured, so one trace can be followed across services), and a Prometheus endpoint.

Trace context crosses Kafka hops in record headers (trading_platform.messaging) and gRPC hops in metadata
(trading_platform.rpc); both use the W3C traceparent format.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import start_http_server

from trading_platform.sampling import sampler
from trading_platform.settings import TelemetrySettings

_provider: TracerProvider | None = None


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current span's trace and span ids, as in the W3C header (hex)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = f"{context.trace_id:032x}"
        event["span_id"] = f"{context.span_id:016x}"
    return event


def configure_logging(service_name: str, level: str = "INFO", log_format: str = "json") -> None:
    renderer: Any = structlog.processors.JSONRenderer() if log_format == "json" else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_trace_ids,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service_name)


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file as JSON lines (one object per span); several processes may share it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            context = span.get_span_context()
            if context is None:
                continue
            lines.append(
                json.dumps(
                    {
                        "trace_id": f"{context.trace_id:032x}",
                        "span_id": f"{context.span_id:016x}",
                        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
                        "name": span.name,
                        "kind": span.kind.name,
                        "service": span.resource.attributes.get("service.name"),
                        "start_ns": span.start_time,
                        "end_ns": span.end_time,
                        "status": span.status.status_code.name,
                        "attributes": {
                            k: v if isinstance(v, str | int | float | bool) else str(v)
                            for k, v in (span.attributes or {}).items()
                        },
                    }
                )
            )
        with self._lock, self.path.open("a") as handle:
            handle.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def configure_tracing(service_name: str, spans_file: Path | None = None, sample_ratio: float = 1.0) -> TracerProvider:
    global _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}), sampler=sampler(sample_ratio))
    if spans_file is not None:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(spans_file), schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def setup_observability(service_name: str, telemetry: TelemetrySettings) -> int | None:
    """Logs, traces and metrics for one service process. Returns the metrics port, if one was opened."""
    configure_logging(service_name, telemetry.log_level, telemetry.log_format)
    configure_tracing(service_name, telemetry.spans_file, telemetry.trace_sample_ratio)
    if telemetry.metrics_port:
        # Loopback unless TRADING_TELEMETRY__METRICS_HOST opens it (the charts do; a NetworkPolicy admits the scraper).
        start_http_server(telemetry.metrics_port, addr=telemetry.metrics_host)
        return telemetry.metrics_port
    return None


def shutdown_observability() -> None:
    """Flush spans that are still buffered (call at shutdown)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=2000)
        _provider.shutdown()


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
