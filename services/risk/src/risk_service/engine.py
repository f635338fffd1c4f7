"""The pre-trade gate: trading state, limits and throttles. Pure: no I/O; time comes from an injected clock.

A check approves an order only when every limit holds; the first that fails names the reason (ReasonCode). It fails
closed: until the book is rebuilt (`mark_ready`), while the trading day's start-of-day equity is unknown, and on stale
market data or no price at all, it denies. Position and exposure limits count the fills (positions) and the remaining
quantity of every working order (approved, not yet terminal), assuming the worst: all buys or all sells fill. Daily
loss is measured against the broker's equity at the start of the trading day (midnight, America/New_York by default)
and drawdown against the day's peak; a breach moves the trading state to HALTED by itself. In REDUCING only orders
that shrink the position (together with the working orders on the same side) pass; in HALTED nothing new passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.clock import Clock
from trading_platform.decimals import from_proto, to_proto

from risk_service.config import RiskConfig

R = risk_pb2
NS = 1_000_000_000
ZERO = Decimal(0)
TERMINAL = frozenset(
    {
        oms_pb2.ORDER_STATUS_DENIED,
        oms_pb2.ORDER_STATUS_REJECTED,
        oms_pb2.ORDER_STATUS_FILLED,
        oms_pb2.ORDER_STATUS_CANCELED,
        oms_pb2.ORDER_STATUS_EXPIRED,
    }
)
DECIMAL_LIMITS = (
    "max_order_quantity",
    "max_order_notional",
    "price_collar",
    "max_position_notional",
    "max_gross_exposure",
    "max_net_exposure",
    "max_daily_loss",
    "max_drawdown",
)
INT_LIMITS = ("max_orders_per_second", "max_orders_per_day")


@dataclass
class Exposure:
    quantity: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    average_entry_price: Decimal = ZERO


@dataclass
class WorkingOrder:
    symbol: str
    remaining: Decimal  # signed: positive buys, negative sells
    buy: bool


@dataclass(frozen=True)
class DayEquity:
    day: str  # YYYY-MM-DD in the trading day's time zone
    equity: Decimal  # the broker account's equity when the day started
    book_pnl: Decimal  # the book's P&L at that moment


@dataclass
class Verdict:
    approved: bool
    reason_code: int
    reason: str


def signed_quantity(side: int, quantity: Decimal) -> Decimal:
    return quantity if side == common_pb2.ORDER_SIDE_BUY else -quantity


@dataclass
class RiskEngine:
    limits: RiskConfig
    clock: Clock
    trading_state: int = R.TRADING_STATE_ACTIVE
    state_reason: str = "start"
    ready: bool = False  # the book is rebuilt from the bus: until then every check is denied
    last_price: dict[str, tuple[Decimal, int]] = field(default_factory=dict)  # symbol -> (price, seen at ns)
    positions: dict[str, Exposure] = field(default_factory=dict)
    working: dict[str, WorkingOrder] = field(default_factory=dict)  # client order id -> its remaining quantity
    ended: set[str] = field(default_factory=set)  # client order ids whose terminal event was seen
    # client order id -> (symbol, side, quantity) of the order it was first approved for
    seen_client_order_ids: dict[str, tuple[str, int, Decimal]] = field(default_factory=dict)
    recent_orders: list[int] = field(default_factory=list)  # approval times (ns) of the last second, sorted
    orders_today: int = 0
    day: str = ""
    day_equity: DayEquity | None = None
    peak_equity: Decimal = ZERO
    # Set by check when a loss limit moves the state; the app publishes the change.
    state_changes: list[tuple[int, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.zone = ZoneInfo(self.limits.trading_day_timezone)

    # -- the book ----------------------------------------------------------------------------------------------
    def mark_ready(self) -> None:
        self.ready = True

    def on_price(self, symbol: str, price: Decimal) -> None:
        self.last_price[symbol] = (price, self.clock.now_ns())

    def on_position(self, symbol: str, quantity: Decimal, average_entry_price: Decimal, realized: Decimal) -> None:
        self.positions[symbol] = Exposure(quantity, realized, average_entry_price)

    def on_decision(self, decision: risk_pb2.RiskDecision) -> None:
        """A decision on the bus (replayed at start, or made by another instance): an approval is a working order
        and counts against the throttles, once per client order id."""
        cid = decision.client_order_id
        if not decision.approved or cid in self.seen_client_order_ids:
            return
        quantity = from_proto(decision.quantity) or ZERO
        self._record_approval(cid, decision.symbol, decision.side, quantity, decision.envelope.ts_event)

    def on_order_event(self, client_order_id: str, status: int, quantity: Decimal, filled: Decimal) -> None:
        """An order of record moved: a terminal one releases its working quantity, a partial fill shrinks it."""
        if status in TERMINAL:
            self.ended.add(client_order_id)
            self.working.pop(client_order_id, None)
            return
        order = self.working.get(client_order_id)
        if order is not None:
            remaining = max(quantity - filled, ZERO)
            order.remaining = remaining if order.buy else -remaining

    def _record_approval(self, cid: str, symbol: str, side: int, quantity: Decimal, at_ns: int) -> None:
        now = self.clock.now_ns()
        self._roll_day(now)
        self.seen_client_order_ids[cid] = (symbol, side, quantity)
        if cid not in self.ended:
            self.working[cid] = WorkingOrder(symbol, signed_quantity(side, quantity), side == common_pb2.ORDER_SIDE_BUY)
        if self.trading_day(at_ns) == self.day:
            self.orders_today += 1
        if now - at_ns <= NS:
            self.recent_orders.append(at_ns)
            self.recent_orders.sort()

    # -- the trading day and equity ----------------------------------------------------------------------------
    def trading_day(self, at_ns: int) -> str:
        return datetime.fromtimestamp(at_ns / NS, self.zone).date().isoformat()

    def _roll_day(self, now: int) -> None:
        day = self.trading_day(now)
        if day != self.day:
            self.day, self.orders_today = day, 0

    def today_without_equity(self) -> str | None:
        """Today's trading day while its start-of-day equity is not known (then the broker must be asked)."""
        today = self.trading_day(self.clock.now_ns())
        return None if self.day_equity is not None and self.day_equity.day == today else today

    def start_day(self, day: str, equity: Decimal) -> DayEquity:
        """The broker's equity at the start of `day`: the day's loss and drawdown are measured from here."""
        started = DayEquity(day, equity, self.book_pnl())
        self.restore_day(started)
        return started

    def restore_day(self, started: DayEquity) -> None:
        self.day_equity = started
        self.peak_equity = started.equity

    def _price(self, symbol: str) -> Decimal:
        last = self.last_price.get(symbol)
        if last is not None:
            return last[0]
        return self.positions.get(symbol, Exposure()).average_entry_price

    def book_pnl(self) -> Decimal:
        pnl = ZERO
        for symbol, exposure in self.positions.items():
            pnl += exposure.realized_pnl + (self._price(symbol) - exposure.average_entry_price) * exposure.quantity
        return pnl

    def equity(self) -> Decimal:
        if self.day_equity is None:
            raise RuntimeError("the start-of-day equity is not known")
        return self.day_equity.equity + self.book_pnl() - self.day_equity.book_pnl

    def set_state(self, state: int, reason: str) -> tuple[int, int]:
        previous = self.trading_state
        self.trading_state = state
        self.state_reason = reason
        return previous, state

    def _loss_limits(self) -> Verdict | None:
        assert self.day_equity is not None
        equity = self.equity()
        self.peak_equity = max(self.peak_equity, equity)
        loss = self.day_equity.equity - equity
        if loss > self.limits.max_daily_loss:
            return self._halt(R.REASON_CODE_DAILY_LOSS, f"daily loss {loss:.2f} above {self.limits.max_daily_loss}")
        if self.peak_equity > 0 and (self.peak_equity - equity) / self.peak_equity > self.limits.max_drawdown:
            return self._halt(R.REASON_CODE_DRAWDOWN, f"drawdown above {self.limits.max_drawdown:%}")
        return None

    def _halt(self, code: int, reason: str) -> Verdict:
        if self.trading_state != R.TRADING_STATE_HALTED:
            previous, state = self.set_state(R.TRADING_STATE_HALTED, reason)
            self.state_changes.append((previous, state, reason))
        return Verdict(False, code, reason)

    # -- exposure ----------------------------------------------------------------------------------------------
    def _bounds(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per symbol, the position if every working buy fills and if every working sell fills."""
        bounds = {symbol: (e.quantity, e.quantity) for symbol, e in self.positions.items()}
        for order in self.working.values():
            high, low = bounds.get(order.symbol, (ZERO, ZERO))
            if order.remaining > 0:
                high += order.remaining
            else:
                low += order.remaining
            bounds[order.symbol] = (high, low)
        return bounds

    def _exposure_limits(self, symbol: str, signed: Decimal, price: Decimal, notional: Decimal) -> Verdict | None:
        limits = self.limits
        bounds = self._bounds()
        high, low = bounds.get(symbol, (ZERO, ZERO))
        bounds[symbol] = (high + signed, low) if signed > 0 else (high, low + signed)
        high, low = bounds[symbol]
        if max(abs(high), abs(low)) * price > limits.max_position_notional:
            return Verdict(
                False, R.REASON_CODE_MAX_POSITION, f"{symbol} position would exceed {limits.max_position_notional}"
            )
        prices = {s: (price if s == symbol else self._price(s)) for s in bounds}
        gross = sum((max(abs(h), abs(lo)) * prices[s] for s, (h, lo) in bounds.items()), ZERO)
        if gross > limits.max_gross_exposure:
            return Verdict(False, R.REASON_CODE_GROSS_EXPOSURE, f"gross exposure {gross:.2f} too high")
        net_high = sum((h * prices[s] for s, (h, _) in bounds.items()), ZERO)
        net_low = sum((lo * prices[s] for s, (_, lo) in bounds.items()), ZERO)
        net = net_high if abs(net_high) >= abs(net_low) else net_low
        if abs(net) > limits.max_net_exposure:
            return Verdict(False, R.REASON_CODE_NET_EXPOSURE, f"net exposure {net:.2f} too high")
        if signed > 0:
            held_value = sum((abs(e.quantity) * prices.get(s, self._price(s)) for s, e in self.positions.items()), ZERO)
            working_buys = sum(
                (o.remaining * prices.get(o.symbol, price) for o in self.working.values() if o.remaining > 0), ZERO
            )
            if notional > self.equity() - held_value - working_buys:
                return Verdict(False, R.REASON_CODE_BUYING_POWER, "not enough buying power")
        return None

    # -- the check ---------------------------------------------------------------------------------------------
    def check(self, request: risk_pb2.CheckOrderRequest) -> Verdict:
        now = self.clock.now_ns()
        limits = self.limits
        symbol = request.symbol
        quantity = from_proto(request.quantity) or ZERO
        if not symbol or quantity <= 0 or request.side == common_pb2.ORDER_SIDE_UNSPECIFIED:
            return Verdict(
                False, R.REASON_CODE_INVALID_ORDER, "an order needs a symbol, a side and a positive quantity"
            )
        if not self.ready:
            return Verdict(False, R.REASON_CODE_STALE_RISK_STATE, "risk is rebuilding its book from the bus")
        missing_day = self.today_without_equity()
        if missing_day is not None:
            return Verdict(
                False,
                R.REASON_CODE_STALE_RISK_STATE,
                f"the start-of-day equity of {missing_day} is not known yet (read from the broker account)",
            )
        # The same order asked again (its caller's transaction aborted, and the redelivered signal derives the same
        # client order id) is checked again as it stands now and counted once; another order under a used id is a
        # duplicate.
        asked = (symbol, request.side, quantity)
        first = self.seen_client_order_ids.get(request.client_order_id)
        if first is not None and first != asked:
            return Verdict(
                False, R.REASON_CODE_DUPLICATE_ORDER, f"{request.client_order_id} was checked before for another order"
            )
        held = self.positions.get(symbol, Exposure()).quantity
        signed = signed_quantity(request.side, quantity)
        # The working orders on the same side, except this one (asked again), would fill too.
        same_side = sum(
            (
                o.remaining
                for cid, o in self.working.items()
                if o.symbol == symbol and o.buy == (signed > 0) and cid != request.client_order_id
            ),
            ZERO,
        )
        reduces = held != 0 and (held > 0) != (signed > 0) and abs(signed + same_side) <= abs(held)
        if self.trading_state == R.TRADING_STATE_HALTED:
            return Verdict(False, R.REASON_CODE_TRADING_HALTED, f"trading is halted: {self.state_reason}")
        if self.trading_state == R.TRADING_STATE_REDUCING and not reduces:
            return Verdict(False, R.REASON_CODE_REDUCING_ONLY, "trading state REDUCING: only reducing orders pass")
        if symbol in limits.restricted_symbols:
            return Verdict(False, R.REASON_CODE_RESTRICTED_SYMBOL, f"{symbol} is restricted")
        last = self.last_price.get(symbol)
        if last is None or (now - last[1]) > limits.max_market_data_age_s * NS:
            return Verdict(False, R.REASON_CODE_STALE_MARKET_DATA, f"no fresh price for {symbol}")
        price = last[0]
        reference = from_proto(request.limit_price, None) or from_proto(request.reference_price, None) or price
        if abs(reference - price) > price * limits.price_collar:
            return Verdict(
                False,
                R.REASON_CODE_PRICE_COLLAR,
                f"price {reference} is more than {limits.price_collar:%} from the last trade {price}",
            )
        if quantity > limits.max_order_quantity:
            return Verdict(
                False, R.REASON_CODE_MAX_ORDER_QUANTITY, f"quantity {quantity} > {limits.max_order_quantity}"
            )
        notional = quantity * price
        if notional > limits.max_order_notional:
            return Verdict(
                False, R.REASON_CODE_MAX_ORDER_NOTIONAL, f"notional {notional:.2f} > {limits.max_order_notional}"
            )
        if not reduces:
            saved = self.working.pop(request.client_order_id, None)  # asked again: counted once, as asked now
            try:
                breach = self._exposure_limits(symbol, signed, price, notional)
            finally:
                if saved is not None:
                    self.working[request.client_order_id] = saved
            if breach is not None:
                return breach
        while self.recent_orders and now - self.recent_orders[0] > NS:
            self.recent_orders.pop(0)
        if first is None and len(self.recent_orders) >= limits.max_orders_per_second:
            return Verdict(False, R.REASON_CODE_ORDER_RATE, f"more than {limits.max_orders_per_second} orders/s")
        self._roll_day(now)
        if first is None and self.orders_today >= limits.max_orders_per_day:
            return Verdict(False, R.REASON_CODE_ORDERS_PER_DAY, f"{limits.max_orders_per_day} orders today")
        loss = self._loss_limits()
        if loss is not None and not reduces:
            return loss
        if not request.dry_run and first is None:
            self._record_approval(request.client_order_id, symbol, request.side, quantity, now)
        return Verdict(True, R.REASON_CODE_APPROVED, "approved")

    # -- limits ------------------------------------------------------------------------------------------------
    def limits_proto(self) -> risk_pb2.RiskLimits:
        return limits_to_proto(self.limits)

    def proposed_limits(self, proto: risk_pb2.RiskLimits, replace_symbols: bool = False) -> RiskConfig:
        """The limits `proto` asks for on top of the current ones (unset fields unchanged), validated; not applied.
        Raises ValueError (pydantic's) naming a bad field."""
        changes: dict[str, object] = {"limits_version": proto.version or self.limits.limits_version}
        for name in DECIMAL_LIMITS:
            value = from_proto(getattr(proto, name), None)
            if value is not None:
                changes[name] = value
        for name in INT_LIMITS:
            if getattr(proto, name):
                changes[name] = getattr(proto, name)
        if proto.restricted_symbols or replace_symbols:
            changes["restricted_symbols"] = list(dict.fromkeys(proto.restricted_symbols))
        if proto.max_market_data_age_ms:
            changes["max_market_data_age_s"] = proto.max_market_data_age_ms / 1000
        return RiskConfig.model_validate({**self.limits.model_dump(), **changes})

    def update_limits(self, proto: risk_pb2.RiskLimits, replace_symbols: bool = False) -> RiskConfig:
        self.limits = self.proposed_limits(proto, replace_symbols)
        return self.limits


def limits_to_proto(limits: RiskConfig) -> risk_pb2.RiskLimits:
    return risk_pb2.RiskLimits(
        version=limits.limits_version,
        max_order_quantity=to_proto(limits.max_order_quantity),
        max_order_notional=to_proto(limits.max_order_notional),
        price_collar=to_proto(limits.price_collar),
        max_position_notional=to_proto(limits.max_position_notional),
        max_gross_exposure=to_proto(limits.max_gross_exposure),
        max_net_exposure=to_proto(limits.max_net_exposure),
        max_orders_per_second=limits.max_orders_per_second,
        max_orders_per_day=limits.max_orders_per_day,
        max_daily_loss=to_proto(limits.max_daily_loss),
        max_drawdown=to_proto(limits.max_drawdown),
        restricted_symbols=list(limits.restricted_symbols),
        max_market_data_age_ms=int(limits.max_market_data_age_s * 1000),
    )
