"""Message ids, the in-process idempotency store's bound, and head sampling of traces."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from trading_platform.ids import new_message_id
from trading_platform.messaging import MemoryIdempotencyStore
from trading_platform.sampling import sampler
from trading_platform.settings import TelemetrySettings


def test_message_ids_are_canonical_random_uuids() -> None:
    ids = {new_message_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for value in list(ids)[:500]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_bounded_store_forgets_the_oldest_ids_first() -> None:
    async def run() -> None:
        store = MemoryIdempotencyStore(max_ids=3)
        for name in ("a", "b", "c", "a", "d"):  # marking "a" again does not refresh or duplicate it
            await store.mark(name)
        assert len(store) == 3
        assert [await store.seen(name) for name in ("a", "b", "c", "d")] == [False, True, True, True]
        unbounded = MemoryIdempotencyStore()
        for k in range(1000):
            await unbounded.mark(str(k))
        assert len(unbounded) == 1000 and await unbounded.seen("0")

    asyncio.run(run())
    with pytest.raises(ValueError, match="max_ids"):
        MemoryIdempotencyStore(max_ids=0)


def test_traces_started_here_are_sampled_and_continued_ones_follow_their_sender() -> None:
    provider = TracerProvider(sampler=sampler(0.1))  # as configure_tracing builds it
    tracer = provider.get_tracer("test")
    roots = [tracer.start_span("root") for _ in range(5000)]
    recorded = sum(span.is_recording() for span in roots)
    assert 350 < recorded < 650  # about a tenth, decided by the trace id
    for root in roots[:200]:
        child = tracer.start_span("child", context=trace.set_span_in_context(root))
        assert child.is_recording() == root.is_recording()  # a trace is whole or absent
    assert TelemetrySettings().trace_sample_ratio == 1.0  # by default every trace is recorded
    with pytest.raises(ValueError, match="trace_sample_ratio"):
        TelemetrySettings(trace_sample_ratio=1.5)
