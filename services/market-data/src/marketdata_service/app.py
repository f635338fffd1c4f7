"""Market-data wiring: the one broker market-data connection (alpaca-py StockDataStream), REST polling as the
backup source, validated bars out, rejects to the dead-letter topic, quality scores, and the snapshot RPCs.

The stream is read raw (`raw_data=True`: the msgpack maps as sent, no pydantic model per record) and every record is
handed to a librdkafka producer without waiting for its ack (marketdata_service.fanout): thousands of records a second
go out in batches, a full producer queue holds the stream back, and a record the bus did not take is counted."""

from __future__ import annotations

import asyncio
import contextlib
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
from trading_platform.messaging import ensure_topics
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer
from trading_platform.service import ServiceParts

from marketdata_service.config import MarketDataSettings
from marketdata_service.engine import BarValidator, quote_problem
from marketdata_service.fanout import Fanout
from marketdata_service.records import BadStreamRecord, rest_bar, stream_bar, stream_quote, stream_trade

log = get_logger("market-data")
BARS = Counter("marketdata_bars_total", "bars received", ["outcome", "source"])
LEASE_REFUSED = Counter("marketdata_lease_refused_total", "broker records not published: no live lease", ["kind"])
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
            key,
            secret,
            raw_data=True,
            url_override=broker.data_stream_url or broker.stream_url(f"/v2/{broker.feed}"),
            # alpaca-py's keepalive; frames read off the socket and not yet handled are few (alpaca-py keeps 1,024:
            # at 1,440 records a frame, a backlog of 1.5 million in memory), so a slow reader holds the stream back.
            websocket_params={"ping_interval": 10, "ping_timeout": 180, "max_queue": self.config.max_queued_frames},
        )
        self.stream.subscribe_bars(self.on_stream_bar, *self.config.symbols)
        self.stream.subscribe_quotes(self.on_quote, *self.config.symbols)
        self.stream.subscribe_trades(self.on_trade, *self.config.symbols)
        self.latest_quotes: dict[str, marketdata_pb2.Quote] = {}
        self.rest = StockHistoricalDataClient(key, secret, url_override=broker.base_url or None)
        self.validator = BarValidator(
            self.config.max_jump_sigmas,
            self.config.quality_window_bars,
            self.config.history_bars,
            self.config.confirm_jump_bars,
        )
        kafka = settings.kafka
        self.fanout = Fanout(
            kafka.connection(),
            "market-data",
            namespace=kafka.namespace,
            shadow=settings.deployment.shadow,
            linger_ms=self.config.linger_ms,
            max_queued=self.config.max_queued_records,
        )
        self.source = STREAM
        self.last_stream_bar = time.monotonic()
        self.tasks: list[asyncio.Task[Any]] = []
        # The live lease (blue-green): checked before publishing anything that came from the broker.
        self.lease = LeaseGuard("market-data")
        self.lease_refusals = 0

    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(
            kafka.connection(), PRODUCED, namespace=kafka.namespace, shadow=self.settings.deployment.shadow
        )
        await self.fanout.start()
        if self.settings.deployment.shadow:
            # The idle blue-green colour holds no broker connection (there is one per account): it waits, ready.
            log.info("shadow colour: not connecting to the broker's data stream")
            return
        self.tasks = [asyncio.create_task(self.stream._run_forever()), asyncio.create_task(self.watchdog())]

    async def stop(self) -> None:
        if self.tasks:
            await self.stream.stop_ws()
            # Closed here, with the close handshake: cancelling alpaca-py's reader alone leaves the socket open, and
            # the websocket library then waits 10 s at exit for a TCP close the exchange never sends.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.stream.close(), 2.0)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.fanout.stop()

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

    async def on_stream_bar(self, raw: Any) -> None:  # raw_data=True: the record's map
        if not self.may_publish("bar"):
            return
        self.last_stream_bar = time.monotonic()
        if self.source != STREAM:
            await self.switch(STREAM, "the stream delivers again")
        try:
            bar = stream_bar(raw)
        except (BadStreamRecord, TypeError) as error:
            await self.reject_raw("marketdata.bars.v1", raw, str(error))
            return
        await self.handle(bar)

    async def handle(self, bar: marketdata_pb2.Bar) -> None:
        problem = self.validator.validate(bar)
        if problem is not None:
            BARS.labels("rejected", marketdata_pb2.DataSource.Name(bar.source)).inc()
            await self.reject("marketdata.bars.v1", bar, *problem)
        else:
            BARS.labels("accepted", marketdata_pb2.DataSource.Name(bar.source)).inc()
            await self.fanout.send("marketdata.bars.v1", bar, key=bar.symbol)
        await self.publish_quality(bar.symbol, stale=False)

    async def on_quote(self, raw: Any) -> None:  # raw_data=True: the record's map
        if not self.may_publish("quote"):
            return
        try:
            quote = stream_quote(raw)
        except (BadStreamRecord, TypeError) as error:
            await self.reject_raw("marketdata.quotes.v1", raw, str(error))
            return
        problem = quote_problem(quote)
        if problem is not None:
            await self.reject("marketdata.quotes.v1", quote, *problem)
            return
        self.latest_quotes[quote.symbol] = quote
        await self.fanout.send("marketdata.quotes.v1", quote, key=quote.symbol)

    async def on_trade(self, raw: Any) -> None:  # raw_data=True: the record's map
        if not self.may_publish("trade"):
            return
        try:
            trade = stream_trade(raw)
        except (BadStreamRecord, TypeError) as error:
            await self.reject_raw("marketdata.trades.v1", raw, str(error))
            return
        if not (trade.price > 0 and trade.size > 0):
            await self.reject("marketdata.trades.v1", trade, "invalid_values", "trade price and size must be positive")
            return
        await self.fanout.send("marketdata.trades.v1", trade, key=trade.symbol)

    async def reject(self, topic: str, message: Any, reason_code: str, reason: str) -> None:
        if topic != "marketdata.bars.v1":
            BARS.labels("rejected", "BROKER_STREAM").inc()
        await self.fanout.dead_letter(
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

    async def reject_raw(self, topic: str, raw: dict[str, Any], reason: str) -> None:
        """A stream record no contract message could be made of: dead-lettered as received (its repr), with why."""
        BARS.labels("rejected", "BROKER_STREAM").inc()
        symbol = raw.get("S")
        await self.fanout.dead_letter(
            common_pb2.DeadLetter(
                envelope=new_envelope("market-data"),
                source_topic=topic,
                key=symbol.encode() if isinstance(symbol, str) else b"",
                value=repr(raw).encode(),
                reason_code="invalid_values",
                reason=reason,
                consumer_group="market-data",
            ),
            topic,
        )

    async def publish_quality(self, symbol: str, stale: bool) -> None:
        score = self.validator.quality(symbol, time.time_ns(), stale)
        if score is not None:
            score.envelope.CopyFrom(new_envelope("market-data"))
            await self.fanout.send("marketdata.quality.v1", score, key=symbol)

    async def switch(self, to: int, reason: str) -> None:
        log.warning("data source switched", to=marketdata_pb2.DataSource.Name(to), reason=reason)
        await self.fanout.send(
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
                    await self.handle(rest_bar(bar, REST))

    async def GetLatestBar(self, request: Any, context: Any) -> marketdata_pb2.Bar:
        history = self.validator.history(request.symbol)
        latest = history.latest() if history is not None else None
        if latest is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no bar for {request.symbol} yet")
        return latest

    async def GetLatestQuote(self, request: Any, context: Any) -> marketdata_pb2.Quote:
        quote = self.latest_quotes.get(request.symbol)
        if quote is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no quote for {request.symbol} yet")
        return quote

    async def GetBars(self, request: Any, context: Any) -> marketdata_pb2.GetBarsResponse:
        history = self.validator.history(request.symbol)
        if history is None:
            return marketdata_pb2.GetBarsResponse()
        return marketdata_pb2.GetBarsResponse(bars=history.between(request.start, request.end, request.limit))


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
