"""The exchange: a replay clock over generated minute bars, an order book per account, matching and accounting.

Matching is against the minute bars only, never ahead of them: an order submitted during minute m can fill at the
quote of the bar just completed (marketable orders, immediately) or at the bars after it. A fill's base price is
always a price the bar reached (within its low/high); the fill price adds the half spread and the slippage, both
configured in basis points, and a bar lets each symbol trade at most `participation` of its volume, so large orders
fill partially over several bars. Every fill keeps the bar it came from (`Fill.source`).

Accounting is exact (Decimal): cash, signed positions with average entry price and realised P&L, equity =
cash + sum(position qty * last price), and buying power reserved by open orders that add exposure.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from paper_exchange.intraday import MINUTES_PER_SESSION, MinuteBars, generate_day, half_spread

NEW_YORK = ZoneInfo("America/New_York")
CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")
OPEN_STATUSES = {"new", "accepted", "partially_filled", "pending_new", "held", "pending_cancel", "pending_replace"}
ORDER_TYPES = {"market", "limit", "stop", "stop_limit", "trailing_stop"}
TIME_IN_FORCE = {"day", "gtc", "ioc", "fok", "opg", "cls"}
ORDER_CLASSES = {"simple", "bracket", "oco", "oto"}


class ApiError(Exception):
    """An error as Alpaca returns it: HTTP status, numeric code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def D(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except Exception as error:
        raise ApiError(422, 40010001, f"invalid number {value!r}") from error
    if not number.is_finite():
        raise ApiError(422, 40010001, f"invalid number {value!r}")
    return number


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fill:
    execution_id: str
    order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    base_price: Decimal  # the price the data reached; price = base +/- half spread +/- slippage
    ts: int
    source: dict[str, Any]  # the bar it came from: minute, open, high, low, close, volume, generated


@dataclass
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail_price: Decimal | None
    trail_percent: Decimal | None
    order_class: str
    extended_hours: bool
    created_at: int
    status: str = "new"
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    updated_at: int = 0
    filled_at: int | None = None
    canceled_at: int | None = None
    expired_at: int | None = None
    replaced_at: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    hwm: Decimal | None = None
    triggered: bool = False
    active: bool = True  # bracket/oto legs wait for their parent's fill
    parent_id: str | None = None
    legs: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return (self.qty or Decimal(0)) - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self, nested: bool = True) -> dict[str, Any]:
        def s(value: Decimal | None) -> str | None:
            return None if value is None else format(value.normalize(), "f")

        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at or self.created_at),
            "submitted_at": iso(self.created_at),
            "filled_at": iso(self.filled_at),
            "expired_at": iso(self.expired_at),
            "canceled_at": iso(self.canceled_at),
            "failed_at": None,
            "replaced_at": iso(self.replaced_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": asset_id(self.symbol),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": s(self.notional),
            "qty": s(self.qty),
            "filled_qty": s(self.filled_qty),
            "filled_avg_price": s(self.filled_avg_price),
            "order_class": "" if self.order_class == "simple" else self.order_class,
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": s(self.limit_price),
            "stop_price": s(self.stop_price),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": [leg.to_json() for leg in self.legs] if nested and self.legs else None,
            "trail_percent": s(self.trail_percent),
            "trail_price": s(self.trail_price),
            "hwm": s(self.hwm),
            "position_intent": None,
        }


@dataclass
class Position:
    symbol: str
    qty: Decimal = Decimal(0)
    avg_entry_price: Decimal = Decimal(0)
    realized_pl: Decimal = Decimal(0)

    def apply(self, side: str, qty: Decimal, price: Decimal) -> None:
        signed = qty if side == "buy" else -qty
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = self.qty + signed
            average = (self.avg_entry_price * abs(self.qty) + price * qty) / abs(total)
            self.avg_entry_price = average.quantize(Decimal("0.0000000001"))
            self.qty = total
            return
        closing = min(abs(signed), abs(self.qty))
        direction = Decimal(1) if self.qty > 0 else Decimal(-1)
        self.realized_pl += (price - self.avg_entry_price) * closing * direction
        self.qty += signed
        if self.qty == 0:
            self.avg_entry_price = Decimal(0)
        elif (self.qty > 0) != (direction > 0):  # flipped through zero: the rest opens at this price
            self.avg_entry_price = price


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"paper-exchange/asset/{symbol}"))


@dataclass(frozen=True)
class ExchangeConfig:
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "IBM", "GOOG")
    start_date: str = "2010-01-04"
    end_date: str = "2013-12-31"
    source: str = "bokeh"
    seed: int = 7
    initial_cash: Decimal = Decimal("100000")
    spread_bps: float = 2.0
    slippage_bps: float = 1.0
    participation: float = 0.10
    buying_power_multiplier: Decimal = Decimal(1)
    account_number: str = "PA0000PAPER"


class Exchange:
    """One simulated account on one replayed market. Not thread-safe: the server drives it from one event loop."""

    def __init__(self, config: ExchangeConfig, daily: dict[str, Any] | None = None) -> None:
        from trading_datasets import daily_ohlcv

        self.config = config
        self.daily = daily or {
            s: daily_ohlcv(s, config.source, config.start_date, config.end_date) for s in config.symbols
        }
        common = None
        for bars in self.daily.values():
            common = bars.dates if common is None else np.intersect1d(common, bars.dates)
        if common is None or len(common) == 0:
            raise ValueError(f"no common trading days for {config.symbols} in [{config.start_date}, {config.end_date}]")
        self.days: np.ndarray = common
        self.day_index = 0
        self.minute = -1  # last completed minute of the current day; -1 = before the open
        self._bars_cache: dict[tuple[str, int], MinuteBars] = {}
        self.cash = config.initial_cash
        self.orders: dict[str, Order] = {}
        self.by_client_id: dict[str, Order] = {}
        self.used_client_ids: set[str] = set()
        self.positions: dict[str, Position] = {}
        self.fills: list[Fill] = []
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.market_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._volume_used: dict[str, Decimal] = {}
        self._sequence = 0
        self.created_at = self._session_ns(0, 0)

    # -- time -------------------------------------------------------------------------------------------------
    def _session_ns(self, day_index: int, minute: int) -> int:
        day = self.days[min(day_index, len(self.days) - 1)].astype(dt.date)
        local = dt.datetime.combine(day, dt.time(9, 30), tzinfo=NEW_YORK) + dt.timedelta(minutes=minute)
        return int(local.timestamp() * 1e9)

    @property
    def now_ns(self) -> int:
        # The end of the last completed minute bar.
        return self._session_ns(self.day_index, self.minute + 1)

    @property
    def market_open(self) -> bool:
        return 0 <= self.minute < MINUTES_PER_SESSION - 1

    @property
    def finished(self) -> bool:
        return self.day_index >= len(self.days) - 1 and self.minute >= MINUTES_PER_SESSION - 1

    def day_bars(self, symbol: str, day_index: int | None = None) -> MinuteBars:
        index = self.day_index if day_index is None else day_index
        key = (symbol, index)
        if key not in self._bars_cache:
            daily = self.daily[symbol]
            position = int(np.searchsorted(daily.dates, self.days[index]))
            self._bars_cache = {k: v for k, v in self._bars_cache.items() if k[1] >= index - 1}
            self._bars_cache[key] = generate_day(
                symbol,
                self.days[index],
                float(daily.open[position]),
                float(daily.high[position]),
                float(daily.low[position]),
                float(daily.close[position]),
                float(daily.volume[position]),
                self.config.seed,
            )
        return self._bars_cache[key]

    def bar(self, symbol: str, minute: int | None = None, day_index: int | None = None) -> dict[str, Any]:
        bars = self.day_bars(symbol, day_index)
        m = self.minute if minute is None else minute
        if m < 0:  # before the open: the previous session's last bar
            if (day_index if day_index is not None else self.day_index) == 0:
                m = 0
            else:
                return self.bar(symbol, MINUTES_PER_SESSION - 1, (day_index or self.day_index) - 1)
        day = self.day_index if day_index is None else day_index
        return {
            "symbol": symbol,
            "minute": m,
            "day": str(self.days[day]),
            "t": self._session_ns(day, m),
            "o": float(bars.open[m]),
            "h": float(bars.high[m]),
            "l": float(bars.low[m]),
            "c": float(bars.close[m]),
            "v": float(bars.volume[m]),
            "generated": True,
        }

    def quote(self, symbol: str) -> dict[str, float]:
        last = self.bar(symbol)
        hs = half_spread(last["c"], self.config.spread_bps)
        return {"bid": round(last["c"] - hs, 4), "ask": round(last["c"] + hs, 4), "mid": last["c"]}

    def advance(self, minutes: int = 1) -> int:
        """Move the replay clock minute by minute; each completed bar is published and matched. Returns the number
        of minutes moved (fewer at the end of the data)."""
        moved = 0
        for _ in range(minutes):
            if self.finished:
                break
            if self.minute >= MINUTES_PER_SESSION - 1:
                self.day_index += 1
                self.minute = -1
                self._fill_opening_orders()
            self.minute += 1
            self._volume_used = {}
            for symbol in self.config.symbols:
                bar = self.bar(symbol)
                for listener in self.market_listeners:
                    listener(symbol, bar)
                self._match(symbol, bar)
            if self.minute == MINUTES_PER_SESSION - 1:
                for symbol in self.config.symbols:
                    self._fill_closing_orders(symbol)
                self._close_session()
            moved += 1
        return moved

    def _close_session(self) -> None:
        for order in list(self.orders.values()):
            if order.is_open and order.time_in_force in ("day", "opg", "cls"):
                self._finish(order, "expired", "expired")
            elif order.is_open:
                self._emit("done_for_day", order)

    def _fill_opening_orders(self) -> None:
        for order in list(self.orders.values()):
            if order.is_open and order.time_in_force == "opg" and order.active:
                bar = self.bar(order.symbol, 0)
                self._try_fill(order, bar, base=D(str(bar["o"])), capacity_check=False)

    def _fill_closing_orders(self, symbol: str) -> None:
        for order in list(self.orders.values()):
            if order.is_open and order.symbol == symbol and order.time_in_force == "cls" and order.active:
                bar = self.bar(symbol)
                self._try_fill(order, bar, base=D(str(bar["c"])), capacity_check=False)

    # -- account ----------------------------------------------------------------------------------------------
    def last_price(self, symbol: str) -> Decimal:
        return D(str(self.bar(symbol)["c"]))

    def position_values(self) -> tuple[Decimal, Decimal]:
        long_value = sum((p.qty * self.last_price(s) for s, p in self.positions.items() if p.qty > 0), Decimal(0))
        short_value = sum((p.qty * self.last_price(s) for s, p in self.positions.items() if p.qty < 0), Decimal(0))
        return long_value, short_value

    def equity(self) -> Decimal:
        long_value, short_value = self.position_values()
        return self.cash + long_value + short_value

    def reserved(self) -> Decimal:
        return sum(
            (
                self._exposure_cost(o, o.remaining if o.qty is not None else None)
                for o in self.orders.values()
                if o.is_open and o.active
            ),
            Decimal(0),
        )

    def buying_power(self) -> Decimal:
        long_value, short_value = self.position_values()
        return self.config.buying_power_multiplier * self.equity() - long_value + short_value - self.reserved()

    def _reference_price(self, order: Order) -> Decimal:
        quote = self.quote(order.symbol)
        market = D(str(quote["ask"] if order.side == "buy" else quote["bid"]))
        if order.limit_price is not None:
            return order.limit_price if order.side == "buy" else max(order.limit_price, market)
        if order.stop_price is not None:
            return max(order.stop_price, market) if order.side == "buy" else market
        return market

    def _exposure_cost(self, order: Order, qty: Decimal | None) -> Decimal:
        """The buying power an order needs: only the part that adds exposure (a sell of a long needs none)."""
        if qty is None:  # notional
            return order.notional or Decimal(0) if order.side == "buy" else Decimal(0)
        # Exposure is judged against the position held; other open orders are reserved on their own.
        held = self.positions.get(order.symbol, Position(order.symbol)).qty
        signed = qty if order.side == "buy" else -qty
        reducing = min(abs(signed), abs(held)) if held != 0 and (held > 0) != (signed > 0) else Decimal(0)
        return (abs(signed) - reducing) * self._reference_price(order)

    # -- orders -----------------------------------------------------------------------------------------------
    def submit(self, payload: dict[str, Any]) -> Order:
        order = self._build(payload)
        if order.client_order_id in self.used_client_ids:
            raise ApiError(422, 40010001, "client_order_id must be unique")
        cost = self._exposure_cost(order, order.qty)
        if cost > self.buying_power():
            raise ApiError(403, 40310000, "insufficient buying power")
        self.used_client_ids.add(order.client_order_id)
        for leg in order.legs:
            self.used_client_ids.add(leg.client_order_id)
        self._register(order)
        self._emit("new", order)
        if order.time_in_force in ("opg", "cls"):
            return order
        if order.order_class == "oco":
            for leg in [order, *order.legs]:
                leg.active = True
        if self.minute >= 0:
            self._match_order(order, self.bar(order.symbol), immediate=True)
        if order.time_in_force in ("ioc", "fok") and order.is_open:
            self._finish(order, "canceled", "canceled")
        return order

    def _register(self, order: Order) -> None:
        self.orders[order.id] = order
        self.by_client_id[order.client_order_id] = order
        for leg in order.legs:
            self.orders[leg.id] = leg
            self.by_client_id[leg.client_order_id] = leg

    def _build(self, payload: dict[str, Any], parent: Order | None = None) -> Order:
        symbol = str(payload.get("symbol") or (parent.symbol if parent else "")).upper()
        if symbol not in self.config.symbols:
            raise ApiError(422, 40010001, f"asset {symbol!r} not found" if symbol else "symbol is required")
        side = payload.get("side")
        if side not in ("buy", "sell"):
            raise ApiError(422, 40010001, "side must be buy or sell")
        order_type = payload.get("type") or payload.get("order_type") or "market"
        if order_type not in ORDER_TYPES:
            raise ApiError(422, 40010001, f"invalid order type {order_type!r}")
        tif = payload.get("time_in_force", "day")
        if tif not in TIME_IN_FORCE:
            raise ApiError(422, 40010001, f"invalid time_in_force {tif!r}")
        order_class = payload.get("order_class") or "simple"
        if order_class not in ORDER_CLASSES:
            raise ApiError(422, 40010001, f"invalid order_class {order_class!r}")
        qty = D(payload["qty"]) if payload.get("qty") not in (None, "") else None
        notional = D(payload["notional"]) if payload.get("notional") not in (None, "") else None
        if (qty is None) == (notional is None):
            raise ApiError(422, 40010001, "qty or notional is required, not both")
        if (qty is not None and qty <= 0) or (notional is not None and notional <= 0):
            raise ApiError(422, 40010001, "qty and notional must be positive")
        if notional is not None and (order_type != "market" or tif != "day"):
            raise ApiError(422, 40010001, "notional orders must be market orders with time_in_force day")
        if qty is not None and qty != qty.to_integral_value() and (order_type != "market" or tif != "day"):
            raise ApiError(422, 40010001, "fractional orders must be market orders with time_in_force day")
        limit_price = D(payload["limit_price"]) if payload.get("limit_price") not in (None, "") else None
        stop_price = D(payload["stop_price"]) if payload.get("stop_price") not in (None, "") else None
        trail_price = D(payload["trail_price"]) if payload.get("trail_price") not in (None, "") else None
        trail_percent = D(payload["trail_percent"]) if payload.get("trail_percent") not in (None, "") else None
        if order_class == "oco" and limit_price is None and (payload.get("take_profit") or {}).get("limit_price"):
            limit_price = D(payload["take_profit"]["limit_price"])  # OCO's exit limit comes as take_profit
        if order_type in ("limit", "stop_limit") and limit_price is None:
            raise ApiError(422, 40010001, "limit_price is required for limit orders")
        if order_type in ("stop", "stop_limit") and stop_price is None:
            raise ApiError(422, 40010001, "stop_price is required for stop orders")
        if order_type == "trailing_stop" and (trail_price is None) == (trail_percent is None):
            raise ApiError(422, 40010001, "trailing stop orders need exactly one of trail_price or trail_percent")
        extended_hours = bool(payload.get("extended_hours", False))
        if extended_hours and (order_type != "limit" or tif != "day"):
            raise ApiError(422, 40010001, "extended hours order must be DAY limit orders")
        for price in (limit_price, stop_price):
            if price is not None and price <= 0:
                raise ApiError(422, 40010001, "prices must be positive")
        now = self.now_ns
        client_order_id = str(payload.get("client_order_id") or uuid.uuid4())
        if len(client_order_id) > 128:
            raise ApiError(422, 40010001, "client_order_id must be at most 128 characters")
        order = Order(
            str(uuid.uuid4()),
            client_order_id,
            symbol,
            side,
            order_type,
            tif,
            qty,
            notional,
            limit_price,
            stop_price,
            trail_price,
            trail_percent,
            order_class,
            extended_hours,
            now,
            updated_at=now,
        )
        if order_type == "trailing_stop":
            order.hwm = self.last_price(symbol)
        if order_class in ("bracket", "oto", "oco"):
            self._build_legs(order, payload)
        return order

    def _build_legs(self, order: Order, payload: dict[str, Any]) -> None:
        take_profit = payload.get("take_profit")
        stop_loss = payload.get("stop_loss")
        if order.order_class == "bracket" and not (take_profit and stop_loss):
            raise ApiError(422, 40010001, "bracket orders need take_profit and stop_loss")
        if order.order_class == "oto" and not (take_profit or stop_loss):
            raise ApiError(422, 40010001, "oto orders need take_profit or stop_loss")
        if order.order_class == "oco":
            if order.type != "limit" or not stop_loss:
                raise ApiError(422, 40010001, "oco orders are a limit order (take profit) with a stop_loss")
        if order.qty is None:
            raise ApiError(422, 40010001, "advanced order classes need qty")
        exit_side = "sell" if order.side == "buy" else "buy"
        leg_side = order.side if order.order_class == "oco" else exit_side
        if take_profit and order.order_class != "oco":
            order.legs.append(self._leg(order, leg_side, "limit", limit=D(take_profit["limit_price"])))
        if stop_loss:
            stop_limit = stop_loss.get("limit_price")
            order.legs.append(
                self._leg(
                    order,
                    leg_side,
                    "stop_limit" if stop_limit else "stop",
                    stop=D(stop_loss["stop_price"]),
                    limit=D(stop_limit) if stop_limit else None,
                )
            )

    def _leg(
        self, parent: Order, side: str, order_type: str, limit: Decimal | None = None, stop: Decimal | None = None
    ) -> Order:
        tif = parent.time_in_force if parent.time_in_force in ("day", "gtc") else "day"
        return Order(
            str(uuid.uuid4()),
            f"{parent.client_order_id}-leg{len(parent.legs) + 1}",
            parent.symbol,
            side,
            order_type,
            tif,
            parent.qty,
            None,
            limit,
            stop,
            None,
            None,
            parent.order_class,
            False,
            parent.created_at,
            updated_at=parent.created_at,
            active=False,
            parent_id=parent.id,
        )

    def get(self, order_id: str) -> Order:
        if order_id not in self.orders:
            raise ApiError(404, 40410000, "order not found")
        return self.orders[order_id]

    def get_by_client_id(self, client_order_id: str) -> Order:
        if client_order_id not in self.by_client_id:
            raise ApiError(404, 40410000, "order not found")
        return self.by_client_id[client_order_id]

    def cancel(self, order_id: str) -> None:
        order = self.get(order_id)
        if not order.is_open:
            raise ApiError(422, 42210000, f'order is already in "{order.status}" state')
        self._emit("pending_cancel", order, status="pending_cancel")
        self._finish(order, "canceled", "canceled")
        for leg in order.legs:
            if leg.is_open:
                self._finish(leg, "canceled", "canceled")

    def cancel_all(self) -> list[tuple[Order, int]]:
        result = []
        for order in list(self.orders.values()):
            if order.is_open and order.parent_id is None:
                self.cancel(order.id)
                result.append((order, 200))
        return result

    def replace(self, order_id: str, payload: dict[str, Any]) -> Order:
        old = self.get(order_id)
        if not old.is_open:
            raise ApiError(422, 42210000, f'order is already in "{old.status}" state')
        if old.order_class != "simple":
            raise ApiError(422, 40010001, "replacing advanced orders is not supported; cancel and submit again")
        merged = {
            "symbol": old.symbol,
            "side": old.side,
            "type": old.type,
            "time_in_force": payload.get("time_in_force") or old.time_in_force,
            "qty": payload.get("qty") or (old.qty - old.filled_qty if old.qty is not None else None),
            "limit_price": payload.get("limit_price") or old.limit_price,
            "stop_price": payload.get("stop_price") or old.stop_price,
            "trail_price": payload.get("trail") if old.trail_price is not None else None,
            "trail_percent": payload.get("trail") if old.trail_percent is not None else old.trail_percent,
            "client_order_id": payload.get("client_order_id") or str(uuid.uuid4()),
        }
        if old.type == "trailing_stop" and merged["trail_price"] is None and merged["trail_percent"] is None:
            merged["trail_price"] = old.trail_price
        new = self._build({k: v for k, v in merged.items() if v is not None})
        if new.client_order_id in self.used_client_ids:
            raise ApiError(422, 40010001, "client_order_id must be unique")
        new.replaces = old.id
        old.replaced_by = new.id
        old.replaced_at = self.now_ns
        self._finish(old, "replaced", "replaced")
        self.used_client_ids.add(new.client_order_id)
        self._register(new)
        self._emit("new", new)
        if self.minute >= 0:
            self._match_order(new, self.bar(new.symbol), immediate=True)
        return new

    def list_orders(
        self,
        status: str = "open",
        limit: int = 50,
        symbols: set[str] | None = None,
        direction: str = "desc",
        nested: bool = False,
    ) -> list[Order]:
        orders = [o for o in self.orders.values() if (nested is False or o.parent_id is None)]
        if status == "open":
            orders = [o for o in orders if o.is_open]
        elif status == "closed":
            orders = [o for o in orders if not o.is_open]
        if symbols:
            orders = [o for o in orders if o.symbol in symbols]
        orders.sort(key=lambda o: (o.created_at, o.id), reverse=direction == "desc")
        return orders[:limit]

    def close_position(self, symbol: str, qty: Decimal | None = None, percentage: Decimal | None = None) -> Order:
        position = self.positions.get(symbol)
        if position is None or position.qty == 0:
            raise ApiError(404, 40410000, "position does not exist")
        amount = abs(position.qty)
        if qty is not None:
            amount = min(amount, qty)
        elif percentage is not None:
            amount = (amount * percentage / 100).quantize(QTY_STEP, rounding=ROUND_DOWN)
        return self.submit(
            {
                "symbol": symbol,
                "qty": str(amount),
                "side": "sell" if position.qty > 0 else "buy",
                "type": "market",
                "time_in_force": "day",
            }
        )

    # -- matching ---------------------------------------------------------------------------------------------
    def _match(self, symbol: str, bar: dict[str, Any]) -> None:
        for order in sorted(
            (o for o in self.orders.values() if o.symbol == symbol and o.is_open and o.active),
            key=lambda o: o.created_at,
        ):
            if order.is_open:  # an earlier fill in this loop may have canceled it (oco)
                self._match_order(order, bar, immediate=False)

    def _match_order(self, order: Order, bar: dict[str, Any], immediate: bool) -> None:
        if not order.active or order.time_in_force in ("opg", "cls"):
            return
        hs = D(str(half_spread(bar["c"], self.config.spread_bps)))
        low, high, open_, close = (D(str(bar[k])) for k in ("l", "h", "o", "c"))
        # An immediate check uses the quote of the bar just completed (its close); later bars trade their range.
        reach_low, reach_high, first = (close, close, close) if immediate else (low, high, open_)
        if order.type == "trailing_stop" and not order.triggered:
            trail = order.trail_price if order.trail_price is not None else None
            if order.side == "sell":
                order.hwm = max(order.hwm or reach_high, reach_high) if not immediate else order.hwm
                stop = (order.hwm - trail) if trail is not None else order.hwm * (1 - order.trail_percent / 100)
            else:
                order.hwm = min(order.hwm or reach_low, reach_low) if not immediate else order.hwm
                stop = (order.hwm + trail) if trail is not None else order.hwm * (1 + order.trail_percent / 100)
            order.stop_price = money(stop)
        if order.type in ("stop", "stop_limit", "trailing_stop") and not order.triggered:
            stop = order.stop_price
            assert stop is not None
            hit = reach_low <= stop if order.side == "sell" else reach_high >= stop
            if not hit:
                return
            order.triggered = True
            # A gap through the stop trades at the open; otherwise at the stop, which the bar reached.
            first = min(first, stop) if order.side == "sell" else max(first, stop)
            if order.type != "stop_limit":
                self._try_fill(order, bar, base=first)
                return
        if order.type == "market":
            self._try_fill(order, bar, base=first)
            return
        limit = order.limit_price
        assert limit is not None
        if order.side == "buy":
            if reach_low + hs > limit:
                return
            base = min(first, limit - hs)
            base = max(base, reach_low)
        else:
            if reach_high - hs < limit:
                return
            base = max(first, limit + hs)
            base = min(base, reach_high)
        self._try_fill(order, bar, base=base, limit=limit)

    def _try_fill(
        self,
        order: Order,
        bar: dict[str, Any],
        base: Decimal,
        limit: Decimal | None = None,
        capacity_check: bool = True,
    ) -> None:
        hs = D(str(half_spread(float(base), self.config.spread_bps)))
        slip = base * D(str(self.config.slippage_bps)) / 10_000
        price = base + hs + slip if order.side == "buy" else base - hs - slip
        if limit is not None:
            price = min(price, limit) if order.side == "buy" else max(price, limit)
        price = price.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
        if order.qty is None:  # notional: the quantity is set by the first fill's price
            order.qty = (order.notional / price).quantize(QTY_STEP, rounding=ROUND_DOWN)  # type: ignore[operator]
        capacity = order.remaining
        if capacity_check:
            volume_cap = D(str(bar["v"])) * D(str(self.config.participation))
            capacity = min(capacity, volume_cap - self._volume_used.get(order.symbol, Decimal(0)))
        if order.time_in_force == "fok" and capacity < order.remaining:
            return
        if order.remaining != order.remaining.to_integral_value() or order.qty != order.qty.to_integral_value():
            qty = capacity.quantize(QTY_STEP, rounding=ROUND_DOWN)
        else:
            qty = capacity.to_integral_value(rounding=ROUND_DOWN)
        if qty <= 0:
            return
        if order.side == "buy" and self._exposure_cost(order, qty) > self.buying_power() + self._exposure_cost(
            order, order.remaining
        ):
            return
        self._volume_used[order.symbol] = self._volume_used.get(order.symbol, Decimal(0)) + qty
        self._sequence += 1
        fill = Fill(
            str(uuid.uuid4()),
            order.id,
            order.symbol,
            order.side,
            qty,
            price,
            base,
            self.now_ns,
            {
                "minute": bar["minute"],
                "day": bar["day"],
                "bar_ts": iso(bar["t"]),
                "open": bar["o"],
                "high": bar["h"],
                "low": bar["l"],
                "close": bar["c"],
                "volume": bar["v"],
                "generated": bar["generated"],
            },
        )
        previous_value = (order.filled_avg_price or Decimal(0)) * order.filled_qty
        order.filled_qty += qty
        order.filled_avg_price = (previous_value + price * qty) / order.filled_qty
        order.fills.append(fill)
        order.updated_at = self.now_ns
        self.fills.append(fill)
        position = self.positions.setdefault(order.symbol, Position(order.symbol))
        position.apply(order.side, qty, price)
        self.cash += -price * qty if order.side == "buy" else price * qty
        done = order.filled_qty >= (order.qty or Decimal(0))
        if done:
            order.status = "filled"
            order.filled_at = self.now_ns
        else:
            order.status = "partially_filled"
        self._emit("fill" if done else "partial_fill", order, fill=fill, position_qty=position.qty)
        if done:
            self._on_filled(order)

    def _on_filled(self, order: Order) -> None:
        if order.legs and order.order_class in ("bracket", "oto"):
            for leg in order.legs:
                leg.qty = order.filled_qty
                leg.active = True
                leg.created_at = leg.updated_at = self.now_ns
        if order.parent_id is not None or order.order_class == "oco":
            parent = self.orders.get(order.parent_id) if order.parent_id else order
            siblings = [o for o in ([parent, *parent.legs] if parent else []) if o is not None]
            exit_orders = siblings[1:] if parent is not None and parent.order_class != "oco" else siblings
            for sibling in exit_orders:
                if sibling.id != order.id and sibling.is_open:
                    self._finish(sibling, "canceled", "canceled")

    def _finish(self, order: Order, status: str, event: str) -> None:
        order.status = status
        order.updated_at = self.now_ns
        if status == "canceled":
            order.canceled_at = self.now_ns
        elif status == "expired":
            order.expired_at = self.now_ns
        self._emit(event, order)

    def _emit(
        self,
        event: str,
        order: Order,
        fill: Fill | None = None,
        position_qty: Decimal | None = None,
        status: str | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "event": event,
            "order": order.to_json(),
            "timestamp": iso(self.now_ns),
            "execution_id": str(uuid.uuid4()),
        }
        if status:
            data["order"]["status"] = status
        if fill is not None:
            data.update(
                execution_id=fill.execution_id,
                price=format(fill.price, "f"),
                qty=format(fill.qty, "f"),
                position_qty=format(position_qty or Decimal(0), "f"),
            )
        for listener in self.listeners:
            listener({"stream": "trade_updates", "data": data})

    # -- views ------------------------------------------------------------------------------------------------
    def account_json(self) -> dict[str, Any]:
        long_value, short_value = self.position_values()
        equity = self.equity()
        bp = money(max(self.buying_power(), Decimal(0)))
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.config.account_number)),
            "account_number": self.config.account_number,
            "status": "ACTIVE",
            "crypto_status": "INACTIVE",
            "currency": "USD",
            "buying_power": str(bp),
            "regt_buying_power": str(bp),
            "daytrading_buying_power": "0",
            "non_marginable_buying_power": str(bp),
            "cash": str(money(self.cash)),
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "pending_transfer_out": "0",
            "portfolio_value": str(money(equity)),
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": iso(self.created_at),
            "trade_suspended_by_user": False,
            "multiplier": str(self.config.buying_power_multiplier),
            "shorting_enabled": True,
            "equity": str(money(equity)),
            "last_equity": str(money(equity)),
            "long_market_value": str(money(long_value)),
            "short_market_value": str(money(short_value)),
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": 0,
        }

    def position_json(self, symbol: str) -> dict[str, Any]:
        position = self.positions.get(symbol)
        if position is None or position.qty == 0:
            raise ApiError(404, 40410000, "position does not exist")
        price = self.last_price(symbol)
        market_value = position.qty * price
        cost_basis = position.qty * position.avg_entry_price
        unrealized = market_value - cost_basis
        return {
            "asset_id": asset_id(symbol),
            "symbol": symbol,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": format(position.avg_entry_price.normalize(), "f"),
            "qty": format(position.qty.normalize(), "f"),
            "qty_available": format(position.qty.normalize(), "f"),
            "side": "long" if position.qty > 0 else "short",
            "market_value": str(money(market_value)),
            "cost_basis": str(money(cost_basis)),
            "unrealized_pl": str(money(unrealized)),
            "unrealized_plpc": str((unrealized / abs(cost_basis)).quantize(Decimal("0.0001"))) if cost_basis else "0",
            "unrealized_intraday_pl": str(money(unrealized)),
            "unrealized_intraday_plpc": "0",
            "current_price": format(price, "f"),
            "lastday_price": format(price, "f"),
            "change_today": "0",
            "realized_pl": str(money(position.realized_pl)),
        }

    def open_positions(self) -> list[str]:
        return sorted(s for s, p in self.positions.items() if p.qty != 0)
