"""The pre-trade gate: trading state, limits and throttles. Pure: no I/O; time comes from an injected clock.

A check approves an order only when every limit holds; the first that fails names the reason (ReasonCode). Stale
market data or no price at all denies (fail closed). Daily loss and drawdown breaches move the trading state to
HALTED by themselves; in REDUCING only orders that shrink the position pass; in HALTED nothing new passes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from trading.common.v1 import common_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.clock import Clock
from trading_platform.decimals import from_proto, to_proto

from risk_service.config import RiskConfig

R = risk_pb2
NS = 1_000_000_000


@dataclass
class Exposure:
    quantity: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    average_entry_price: Decimal = Decimal(0)


@dataclass
class Verdict:
    approved: bool
    reason_code: int
    reason: str


@dataclass
class RiskEngine:
    limits: RiskConfig
    clock: Clock
    trading_state: int = R.TRADING_STATE_ACTIVE
    state_reason: str = "start"
    last_price: dict[str, tuple[Decimal, int]] = field(default_factory=dict)  # symbol -> (price, seen at ns)
    positions: dict[str, Exposure] = field(default_factory=dict)
    # client order id -> (symbol, side, quantity) of the order it was first checked for
    seen_client_order_ids: dict[str, tuple[str, int, Decimal]] = field(default_factory=dict)
    recent_orders: deque[int] = field(default_factory=deque)
    orders_today: int = 0
    day: int = -1
    peak_equity: Decimal = Decimal(0)
    # Set by check when a loss limit moves the state; the app publishes the change.
    state_changes: list[tuple[int, int, str]] = field(default_factory=list)

    def on_price(self, symbol: str, price: Decimal) -> None:
        self.last_price[symbol] = (price, self.clock.now_ns())

    def on_position(self, symbol: str, quantity: Decimal, average_entry_price: Decimal, realized: Decimal) -> None:
        self.positions[symbol] = Exposure(quantity, realized, average_entry_price)

    def equity(self) -> Decimal:
        unrealized = Decimal(0)
        for symbol, exposure in self.positions.items():
            price = self.last_price.get(symbol, (exposure.average_entry_price, 0))[0]
            unrealized += (price - exposure.average_entry_price) * exposure.quantity
        realized = sum((e.realized_pnl for e in self.positions.values()), Decimal(0))
        return self.limits.initial_equity + realized + unrealized

    def set_state(self, state: int, reason: str) -> tuple[int, int]:
        previous = self.trading_state
        self.trading_state = state
        self.state_reason = reason
        return previous, state

    def _loss_limits(self) -> Verdict | None:
        equity = self.equity()
        self.peak_equity = max(self.peak_equity, equity)
        loss = self.limits.initial_equity - equity
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

    def check(self, request: risk_pb2.CheckOrderRequest) -> Verdict:
        now = self.clock.now_ns()
        limits = self.limits
        symbol = request.symbol
        quantity = from_proto(request.quantity) or Decimal(0)
        side = 1 if request.side == common_pb2.ORDER_SIDE_BUY else -1
        if not symbol or quantity <= 0 or request.side == common_pb2.ORDER_SIDE_UNSPECIFIED:
            return Verdict(
                False, R.REASON_CODE_INVALID_ORDER, "an order needs a symbol, a side and a positive quantity"
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
        signed = quantity * side
        reduces = held != 0 and (held > 0) != (signed > 0) and abs(signed) <= abs(held)
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
            if abs(held + signed) * price > limits.max_position_notional:
                return Verdict(
                    False, R.REASON_CODE_MAX_POSITION, f"{symbol} position would exceed {limits.max_position_notional}"
                )
            gross = (
                sum(
                    (
                        abs(e.quantity) * self.last_price.get(s, (price, 0))[0]
                        for s, e in self.positions.items()
                        if s != symbol
                    ),
                    Decimal(0),
                )
                + abs(held + signed) * price
            )
            if gross > limits.max_gross_exposure:
                return Verdict(False, R.REASON_CODE_GROSS_EXPOSURE, f"gross exposure {gross:.2f} too high")
            net = (
                sum(
                    (
                        e.quantity * self.last_price.get(s, (price, 0))[0]
                        for s, e in self.positions.items()
                        if s != symbol
                    ),
                    Decimal(0),
                )
                + (held + signed) * price
            )
            if abs(net) > limits.max_net_exposure:
                return Verdict(False, R.REASON_CODE_NET_EXPOSURE, f"net exposure {net:.2f} too high")
            held_value = sum(
                (abs(e.quantity) * self.last_price.get(s, (price, 0))[0] for s, e in self.positions.items()), Decimal(0)
            )
            if side > 0 and notional > self.equity() - held_value:
                return Verdict(False, R.REASON_CODE_BUYING_POWER, "not enough buying power")
        while self.recent_orders and now - self.recent_orders[0] > NS:
            self.recent_orders.popleft()
        if first is None and len(self.recent_orders) >= limits.max_orders_per_second:
            return Verdict(False, R.REASON_CODE_ORDER_RATE, f"more than {limits.max_orders_per_second} orders/s")
        day = now // (86_400 * NS)
        if day != self.day:
            self.day, self.orders_today = day, 0
        if first is None and self.orders_today >= limits.max_orders_per_day:
            return Verdict(False, R.REASON_CODE_ORDERS_PER_DAY, f"{limits.max_orders_per_day} orders today")
        breach = self._loss_limits()
        if breach is not None and not reduces:
            return breach
        if not request.dry_run and first is None:
            self.seen_client_order_ids[request.client_order_id] = asked
            self.recent_orders.append(now)
            self.orders_today += 1
        return Verdict(True, R.REASON_CODE_APPROVED, "approved")

    def limits_proto(self) -> risk_pb2.RiskLimits:
        limits = self.limits
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

    def update_limits(self, proto: risk_pb2.RiskLimits) -> RiskConfig:
        changes: dict[str, object] = {"limits_version": proto.version or self.limits.limits_version}
        for name in (
            "max_order_quantity",
            "max_order_notional",
            "price_collar",
            "max_position_notional",
            "max_gross_exposure",
            "max_net_exposure",
            "max_daily_loss",
            "max_drawdown",
        ):
            value = from_proto(getattr(proto, name), None)
            if value is not None:
                changes[name] = value
        for name in ("max_orders_per_second", "max_orders_per_day"):
            if getattr(proto, name):
                changes[name] = getattr(proto, name)
        if proto.restricted_symbols:
            changes["restricted_symbols"] = list(proto.restricted_symbols)
        if proto.max_market_data_age_ms:
            changes["max_market_data_age_s"] = proto.max_market_data_age_ms / 1000
        self.limits = RiskConfig.model_validate({**self.limits.model_dump(), **changes})
        return self.limits
