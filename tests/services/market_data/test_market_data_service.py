"""market-data against the paper exchange's stream and the real Kafka-protocol broker: bars flow, the stream dies,
REST polling takes over and says so, and the stream takes back over when it returns."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from marketdata_service.app import MarketDataApp
from marketdata_service.config import MarketDataSettings
from paper_exchange.testing import RunningExchange
from trading.marketdata.v1 import marketdata_pb2 as M
from trading_platform.messaging import replay
from trading_platform.settings import load_settings
from trading_platform.testing.waiting import eventually

pytestmark = pytest.mark.integration


async def topic(bootstrap: str, namespace: str, name: str) -> list[Any]:
    return [m.value async for m in replay(bootstrap, name, namespace=namespace)]


def market_data(kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange) -> MarketDataApp:
    settings = load_settings(
        MarketDataSettings,
        service_name="market-data",
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": topic_namespace},
        broker={
            "base_url": paper_exchange.url,
            "api_key_id": paper_exchange.key_id,
            "api_secret_key": paper_exchange.secret_key,
        },
        marketdata={"symbols": ["AAPL", "MSFT"], "stale_after_s": 1.0, "poll_interval_s": 0.3},
    )
    return MarketDataApp(settings)


async def test_stream_to_rest_failover_and_back(
    kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    app = market_data(kafka_bootstrap, topic_namespace, paper_exchange)
    await app.start()
    state = paper_exchange.server.config.app.state.paper  # type: ignore[attr-defined]
    try:
        await eventually(lambda: _true(any(s["bars"] for s in state.data_clients.values())), 10, "a subscription")
        await asyncio.to_thread(paper_exchange.advance, 3)

        async def streamed() -> bool:
            bars = await topic(kafka_bootstrap, topic_namespace, "marketdata.bars.v1")
            return len([b for b in bars if b.source == M.DATA_SOURCE_BROKER_STREAM]) >= 6

        await eventually(streamed, 10, "6 streamed bars")
        quotes = await topic(kafka_bootstrap, topic_namespace, "marketdata.quotes.v1")
        assert quotes and all(q.bid_price < q.ask_price for q in quotes)

        await asyncio.to_thread(paper_exchange.set_faults, refuse_streams=True, drop_streams=True)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(paper_exchange.advance, 2)

        async def failed_over() -> bool:
            bars = await topic(kafka_bootstrap, topic_namespace, "marketdata.bars.v1")
            return any(b.source == M.DATA_SOURCE_BROKER_REST for b in bars)

        await eventually(failed_over, 15, "bars from the REST backup")
        switches = await topic(kafka_bootstrap, topic_namespace, "marketdata.sources.v1")
        assert (switches[0].from_source, switches[0].to_source) == (
            M.DATA_SOURCE_BROKER_STREAM,
            M.DATA_SOURCE_BROKER_REST,
        )
        stale = await topic(kafka_bootstrap, topic_namespace, "marketdata.quality.v1")
        assert any(score.stale and score.score == 0.0 for score in stale)

        await asyncio.to_thread(paper_exchange.set_faults, refuse_streams=False)
        await eventually(lambda: _true(any(s["bars"] for s in state.data_clients.values())), 20, "a resubscription")
        await asyncio.to_thread(paper_exchange.advance, 1)

        async def switched_back() -> bool:
            found = await topic(kafka_bootstrap, topic_namespace, "marketdata.sources.v1")
            return any(s.to_source == M.DATA_SOURCE_BROKER_STREAM for s in found)

        await eventually(switched_back, 15, "the switch back to the stream")
        bars = await topic(kafka_bootstrap, topic_namespace, "marketdata.bars.v1")
        for symbol in ("AAPL", "MSFT"):  # no bar twice, none out of order, across the failovers
            times = [b.envelope.ts_event for b in bars if b.symbol == symbol]
            assert times == sorted(set(times))
    finally:
        await app.stop()


async def test_a_stopped_service_closes_its_broker_stream(
    kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    """stop() ends the data stream with the close handshake: the broker allows one data connection per account, so a
    socket left open would refuse the next market-data its connection (and the process's exit waited 10 s on it)."""
    app = market_data(kafka_bootstrap, topic_namespace, paper_exchange)
    await app.start()
    state = paper_exchange.server.config.app.state.paper  # type: ignore[attr-defined]
    try:
        await eventually(lambda: _true(any(s["bars"] for s in state.data_clients.values())), 10, "a subscription")
    finally:
        await app.stop()
    await eventually(lambda: _true(not state.data_clients and not state.data_keys), 2, "the exchange to free the slot")


async def _true(value: bool) -> bool:
    return value
