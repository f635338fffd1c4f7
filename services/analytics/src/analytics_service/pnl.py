"""P&L by day and symbol (analytics.pnl.v1): realized from fills (average cost), unrealized at the last mark.

Each fill of oms.events.v1 (by fill id, once) moves the symbol's book: a fill that adds to the position averages its
cost, one that reduces it realizes (price - average cost) x the closed quantity. The day is the exchange day of the
fill (America/New_York by default). The mark is the last bar's close (marketdata.bars.v1) or the last fill price;
the unrealized P&L of a row is the open position at that mark. A mark re-values the day the bar was made (its
envelope's ts_init): a bar's ts_event is the market's time, which a replay (the paper exchange) sets in the past.
The `_all` row of a day is the account: the sums over the symbols. Money is Decimal throughout, kept in the tables
as decimal strings.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from trading.analytics.v1 import analytics_pb2
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope

from analytics_service.windows import ALL

FILLS = (oms_pb2.ORDER_EVENT_TYPE_PARTIALLY_FILLED, oms_pb2.ORDER_EVENT_TYPE_FILLED)
ZERO = Decimal(0)


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


class Pnl:
    """The P&L fold over three tables: the day rows (`<day>|<symbol>`), the books (symbol -> quantity, average
    cost, mark) and the fill ids already counted."""

    def __init__(
        self,
        rows: MutableMapping[str, Any],
        books: MutableMapping[str, Any],
        fills: MutableMapping[str, Any],
        timezone: str = "America/New_York",
    ) -> None:
        self.rows, self.books, self.fills = rows, books, fills
        self.zone = ZoneInfo(timezone)

    def day(self, ts_ns: int) -> str:
        return datetime.fromtimestamp(ts_ns / 1e9, UTC).astimezone(self.zone).date().isoformat()

    def on_order_event(self, event: oms_pb2.OrderEvent) -> list[str]:
        """A fill moves its symbol's book and its day's rows; returns the keys of the rows that changed."""
        if event.event_type not in FILLS or not event.fill_id or event.fill_id in self.fills:
            return []
        quantity = Decimal(event.last_quantity.value or "0")
        price = Decimal(event.last_price.value or "0")
        side = {common_pb2.ORDER_SIDE_BUY: 1, common_pb2.ORDER_SIDE_SELL: -1}.get(event.order.side, 0)
        symbol = event.order.symbol
        if not quantity or not price or not side or not symbol:
            return []
        ts = event.envelope.ts_event
        self.fills[event.fill_id] = ts
        book = dict(self.books.get(symbol) or {"quantity": "0", "cost": "0", "mark": "0"})
        realized = self._apply(book, Decimal(side) * quantity, price)
        book["mark"] = str(price)
        self.books[symbol] = book
        day = self.day(ts)
        for subject in (symbol, ALL):
            row = self._row(day, subject)
            row["realized"] = str(Decimal(row["realized"]) + realized)
            row["fills"] += 1
            row["traded_notional"] = str(Decimal(row["traded_notional"]) + quantity * price)
            self.rows[f"{day}|{subject}"] = row
        return [f"{day}|{symbol}", f"{day}|{ALL}"]

    def on_mark(self, symbol: str, price: Decimal, ts_ns: int) -> list[str]:
        """A new mark for a symbol with an open position re-values its row and the account's for that day."""
        book = self.books.get(symbol)
        if book is None or price <= 0:
            return []
        self.books[symbol] = {**book, "mark": str(price)}
        if not Decimal(book["quantity"]):
            return []
        day = self.day(ts_ns)
        for subject in (symbol, ALL):
            self.rows[f"{day}|{subject}"] = self._row(day, subject)
        return [f"{day}|{symbol}", f"{day}|{ALL}"]

    @staticmethod
    def _apply(book: dict[str, Any], signed: Decimal, price: Decimal) -> Decimal:
        """Move a book by a signed fill quantity at a price; returns the P&L the fill realized."""
        position, cost = Decimal(book["quantity"]), Decimal(book["cost"])
        realized = ZERO
        if not position or _sign(position) == _sign(signed):
            total = abs(position) + abs(signed)
            cost = (abs(position) * cost + abs(signed) * price) / total
        else:
            closed = min(abs(signed), abs(position))
            realized = closed * (price - cost) * _sign(position)
            if abs(signed) > abs(position):
                cost = price  # the position flipped: what is left was opened at this price
            elif abs(signed) == abs(position):
                cost = ZERO
        book["quantity"], book["cost"] = str(position + signed), str(cost)
        return realized

    def _row(self, day: str, subject: str) -> dict[str, Any]:
        row = self.rows.get(f"{day}|{subject}")
        return {**row} if row else {"realized": "0", "fees": "0", "fills": 0, "traded_notional": "0"}

    def _unrealized(self, symbol: str) -> tuple[Decimal, Decimal]:
        book = self.books.get(symbol) or {"quantity": "0", "cost": "0", "mark": "0"}
        position, cost, mark = Decimal(book["quantity"]), Decimal(book["cost"]), Decimal(book["mark"])
        return (position * (mark - cost) if position and mark else ZERO), position

    def row_message(self, key: str) -> analytics_pb2.PnlDay:
        day, subject = key.split("|", 1)
        row = self.rows[key]
        if subject == ALL:
            unrealized = sum((self._unrealized(symbol)[0] for symbol in list(self.books.keys())), ZERO)
            position = ZERO
        else:
            unrealized, position = self._unrealized(subject)
        return analytics_pb2.PnlDay(
            envelope=new_envelope("analytics"),
            day=day,
            symbol=subject,
            realized=to_proto(Decimal(row["realized"])),
            unrealized=to_proto(unrealized),
            fees=to_proto(Decimal(row["fees"])),
            position=to_proto(position),
            fills=row["fills"],
            traded_notional=to_proto(Decimal(row["traded_notional"])),
        )

    def forget(self, now_ns: int, keep_s: int) -> int:
        horizon = now_ns - keep_s * 1_000_000_000
        old = [fill for fill, ts in list(self.fills.items()) if ts < horizon]
        for fill in old:
            del self.fills[fill]
        return len(old)
