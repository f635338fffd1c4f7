"""Market-data wiring: the one broker market-data connection (alpaca-py StockDataStream), REST polling as the
backup source, validated bars out, rejects to the dead-letter topic, quality scores, and the snapshot RPCs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockLatestBarRequest
from prometheus_client import Counter
from trading.common.v1 import common_pb2
from trading.marketdata.v1 import marketdata_pb2, marketdata_pb2_grpc
from trading_platform.deployment import LeaseGuard, LeaseLost
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, ensure_topics
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer
from trading_platform.service import ServiceParts

from marketdata_service.config import MarketDataSettings
from marketdata_service.engine import BarValidator, quote_problem

log = get_logger("market-data")
BARS = Counter("marketdata_bars_total", "bars received", ["outcome", "source"])
LEASE_REFUSED = Counter("marketdata_lease_refused_total", "broker records not published: no live lease", ["kind"])
PUBLISH_FAILURES = Counter("marketdata_publish_failures_total", "records the bus did not acknowledge", ["topic"])
PRODUCED = [
    "marketdata.bars.v1",
    "marketdata.bars.v1.dlq",
    "marketdata.quotes.v1",
    "marketdata.quotes.v1.dlq",
    "marketdata.trades.v1",
    "marketdata.trades.v1.dlq",
    "marketdata.quality.v1",
    "marketdata.sources.v1",
]
STREAM, REST = marketdata_pb2.DATA_SOURCE_BROKER_STREAM, marketdata_pb2.DATA_SOURCE_BROKER_REST


class MarketDataApp(marketdata_pb2_grpc.MarketDataServiceServicer):
    def __init__(self, settings: MarketDataSettings) -> None:
        self.settings = settings
        self.config = settings.marketdata
        broker = settings.broker
        key, secret = broker.api_key_id.get_secret_value(), broker.api_secret_key.get_secret_value()
        self.stream = StockDataStream(
            key, secret, url_override=broker.data_stream_url or broker.stream_url(f"/v2/{broker.feed}")
        )
        self.stream.subscribe_bars(self.on_stream_bar, *self.config.symbols)
        self.stream.subscribe_quotes(self.on_quote, *self.config.symbols)
        self.stream.subscribe_trades(self.on_trade, *self.config.symbols)
        self.latest_quotes: dict[str, marketdata_pb2.Quote] = {}
        self.rest = StockHistoricalDataClient(key, secret, url_override=broker.base_url or None)
        self.validator = BarValidator(
            self.config.max_jump_sigmas, self.config.quality_window_bars, self.config.history_bars
        )
        kafka = settings.kafka
        self.publisher = Publisher(
            kafka.connection(),
            "market-data",
            namespace=kafka.namespace,
            shadow=settings.deployment.shadow,
        )
        self.source = STREAM
        self.last_stream_bar = time.monotonic()
        self.tasks: list[asyncio.Task[Any]] = []
        self.unacked: set[asyncio.Future[Any]] = set()
        # The live lease (blue-green): checked before publishing anything that came from the broker.
        self.lease = LeaseGuard("market-data")
        self.lease_refusals = 0

    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(
            kafka.connection(), PRODUCED, namespace=kafka.namespace, shadow=self.settings.deployment.shadow
        )
        await self.publisher.start()
        if self.settings.deployment.shadow:
            # The idle blue-green colour holds no broker connection (there is one per account): it waits, ready.
            log.info("shadow colour: not connecting to the broker's data stream")
            return
        self.tasks = [asyncio.create_task(self.stream._run_forever()), asyncio.create_task(self.watchdog())]

    async def stop(self) -> None:
        if self.tasks:
            await self.stream.stop_ws()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*self.unacked, return_exceptions=True)
        await self.publisher.stop()

    async def emit(self, topic: str, message: Any, key: str) -> None:
        """Market data is pipelined: the next record from the stream is handled while this one's ack is on its way,
        so a burst (every symbol's quote, trade and bar at once) reaches the bus together. Per symbol the order
        holds; a record the bus does not acknowledge is counted and logged."""
        delivery = await self.publisher.send(topic, message, key)
        self.unacked.add(delivery)

        def acked(future: asyncio.Future[Any]) -> None:
            self.unacked.discard(future)
            if not future.cancelled() and future.exception() is not None:
                PUBLISH_FAILURES.labels(topic).inc()
                log.error(
                    "market data not acknowledged by the bus", topic=topic, key=key, error=str(future.exception())
                )

        delivery.add_done_callback(acked)

    def may_publish(self, kind: str) -> bool:
        """Only the holder of the live lease publishes what the broker sends (one broker stream, one publisher); a
        record that arrives without it is dropped and counted, the first of a run logged."""
        try:
            self.lease.check(f"publish broker {kind}s")
        except LeaseLost as error:
            LEASE_REFUSED.labels(kind).inc()
            if not self.lease_refusals:
                log.error("broker data not published: live lease not held", token=error.token, reason=error.reason)
            self.lease_refusals += 1
            return False
        return True

    async def on_stream_bar(self, bar: Any) -> None:
        if not self.may_publish("bar"):
            return
        self.last_stream_bar = time.monotonic()
        if self.source != STREAM:
            await self.switch(STREAM, "the stream delivers again")
        await self.handle(bar, STREAM)

    async def handle(self, raw: Any, source: int) -> None:
        ts_event = int(raw.timestamp.timestamp() * 1e9)
        bar = marketdata_pb2.Bar(
            envelope=new_envelope("market-data", ts_event=ts_event),
            symbol=raw.symbol,
            interval_seconds=60,
            open=float(raw.open),
            high=float(raw.high),
            low=float(raw.low),
            close=float(raw.close),
            volume=float(raw.volume),
            vwap=float(raw.vwap or 0),
            trade_count=int(raw.trade_count or 0),
            source=source,
            generated=True,
        )
        problem = self.validator.validate(bar)
        if problem is not None:
            BARS.labels("rejected", marketdata_pb2.DataSource.Name(source)).inc()
            reason_code, reason = problem
            await self.publisher.publish_dead_letter(
                common_pb2.DeadLetter(
                    envelope=new_envelope("market-data", cause=bar),
                    source_topic="marketdata.bars.v1",
                    key=bar.symbol.encode(),
                    value=bar.SerializeToString(),
                    reason_code=reason_code,
                    reason=reason,
                    consumer_group="market-data",
                ),
                "marketdata.bars.v1",
            )
        else:
            BARS.labels("accepted", marketdata_pb2.DataSource.Name(source)).inc()
            await self.emit("marketdata.bars.v1", bar, key=bar.symbol)
        await self.publish_quality(bar.symbol, stale=False)

    async def on_quote(self, raw: Any) -> None:
        if not self.may_publish("quote"):
            return
        quote = marketdata_pb2.Quote(
            envelope=new_envelope("market-data", ts_event=int(raw.timestamp.timestamp() * 1e9)),
            symbol=raw.symbol,
            bid_price=float(raw.bid_price),
            bid_size=float(raw.bid_size),
            ask_price=float(raw.ask_price),
            ask_size=float(raw.ask_size),
            source=STREAM,
            generated=True,
        )
        problem = quote_problem(quote)
        if problem is not None:
            await self.reject("marketdata.quotes.v1", quote, *problem)
            return
        self.latest_quotes[quote.symbol] = quote
        await self.emit("marketdata.quotes.v1", quote, key=quote.symbol)

    async def on_trade(self, raw: Any) -> None:
        if not self.may_publish("trade"):
            return
        trade = marketdata_pb2.Trade(
            envelope=new_envelope("market-data", ts_event=int(raw.timestamp.timestamp() * 1e9)),
            symbol=raw.symbol,
            price=float(raw.price),
            size=float(raw.size),
            trade_id=str(raw.id),
            source=STREAM,
            generated=True,
        )
        if not (trade.price > 0 and trade.size > 0):
            await self.reject("marketdata.trades.v1", trade, "invalid_values", "trade price and size must be positive")
            return
        await self.emit("marketdata.trades.v1", trade, key=trade.symbol)

    async def reject(self, topic: str, message: Any, reason_code: str, reason: str) -> None:
        BARS.labels("rejected", "BROKER_STREAM").inc()
        await self.publisher.publish_dead_letter(
            common_pb2.DeadLetter(
                envelope=new_envelope("market-data", cause=message),
                source_topic=topic,
                key=message.symbol.encode(),
                value=message.SerializeToString(),
                reason_code=reason_code,
                reason=reason,
                consumer_group="market-data",
            ),
            topic,
        )

    async def publish_quality(self, symbol: str, stale: bool) -> None:
        score = self.validator.quality(symbol, time.time_ns(), stale)
        if score is not None:
            score.envelope.CopyFrom(new_envelope("market-data"))
            await self.publisher.publish("marketdata.quality.v1", score, key=symbol)

    async def switch(self, to: int, reason: str) -> None:
        log.warning("data source switched", to=marketdata_pb2.DataSource.Name(to), reason=reason)
        await self.publisher.publish(
            "marketdata.sources.v1",
            marketdata_pb2.DataSourceSwitched(
                envelope=new_envelope("market-data"), from_source=self.source, to_source=to, reason=reason
            ),
            key="_source",
        )
        self.source = to

    async def watchdog(self) -> None:
        """Fail over to REST polling when the stream goes quiet; back when it delivers again."""
        while True:
            await asyncio.sleep(self.config.poll_interval_s)
            if time.monotonic() - self.last_stream_bar < self.config.stale_after_s or not self.may_publish("rest bar"):
                continue
            if self.source == STREAM:
                await self.switch(REST, f"no stream bar for {self.config.stale_after_s:.0f} s")
                for symbol in self.config.symbols:
                    await self.publish_quality(symbol, stale=True)
            try:
                latest = await asyncio.to_thread(
                    self.rest.get_stock_latest_bar, StockLatestBarRequest(symbol_or_symbols=self.config.symbols)
                )
            except Exception as error:  # the backup failing too: keep trying, say so
                log.error("backup source failed", error=str(error))
                continue
            for bar in latest.values():
                state = self.validator.state(bar.symbol)
                if int(bar.timestamp.timestamp() * 1e9) > state.last_ts and self.may_publish("rest bar"):
                    await self.handle(bar, REST)

    async def GetLatestBar(self, request: Any, context: Any) -> marketdata_pb2.Bar:
        history = self.validator.state(request.symbol).history
        if not history:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no bar for {request.symbol} yet")
        return history[-1]

    async def GetLatestQuote(self, request: Any, context: Any) -> marketdata_pb2.Quote:
        quote = self.latest_quotes.get(request.symbol)
        if quote is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no quote for {request.symbol} yet")
        return quote

    async def GetBars(self, request: Any, context: Any) -> marketdata_pb2.GetBarsResponse:
        bars = [
            b
            for b in self.validator.state(request.symbol).history
            if b.envelope.ts_event >= request.start and (not request.end or b.envelope.ts_event < request.end)
        ]
        return marketdata_pb2.GetBarsResponse(bars=bars[-request.limit :] if request.limit else bars)


async def build(settings: MarketDataSettings) -> ServiceParts:
    app = MarketDataApp(settings)
    return ServiceParts(
        components=[app],
        servicers=[
            Servicer(
                marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server,
                app,
                "trading.marketdata.v1.MarketDataService",
            )
        ],
        live_lease=True,
        lease=app.lease,
    )
