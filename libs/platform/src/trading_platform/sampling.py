"""Trace sampling: head sampling by parent, and how the hot paths tell an unrecorded trace.

No dependency on the rest of the library (messaging and observability both use it)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased


def sampler(ratio: float) -> ParentBased:
    """Head sampling, parent-based: a trace this process starts is recorded with probability `ratio` (decided by its
    trace id); a span continuing a trace from a message or a call follows the sender's decision, so a trace is whole
    or absent, never cut."""
    return ParentBased(TraceIdRatioBased(ratio))


def unsampled() -> bool:
    """Whether the current span is of a trace its starter chose not to record. A span continuing it would record
    nothing and still cost its setup, so the hot paths (a consumed record, a publish) make none: the trace's context,
    and with it the decision, goes on in the headers as it came."""
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled
