"""The read model's tables: rows by key, kept in time order, bounded (the oldest row is evicted), paged newest first.

A `Table` holds at most `cap` rows. Each row has a key (an order's client order id, an analytics row's record key)
and a time (UNIX ns: an order's creation, a window's start); a row put again under its key replaces the old one and
takes its new time. When a put goes over the cap, the row with the oldest time goes (`on_evict` is told, so joined
indexes are cleaned with it). `page()` walks rows from the newest down, after a position (the cursor's), within a
time range, through a filter; `limit + 1` rows are looked at to know whether there is a next page.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Position = tuple[int, str]  # (time ns, key): a row's place in the order, and what a cursor names


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_after: Position | None  # where the next page starts (below this position), None on the last page


class Table(Generic[T]):
    def __init__(self, cap: int, on_evict: Callable[[str, T], None] | None = None) -> None:
        if cap < 1:
            raise ValueError("a table holds at least one row")
        self.cap = cap
        self.on_evict = on_evict
        self._rows: dict[str, tuple[int, T]] = {}
        self._order: list[Position] = []
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def get(self, key: str) -> T | None:
        row = self._rows.get(key)
        return row[1] if row else None

    def put(self, key: str, ts_ns: int, value: T) -> None:
        old = self._rows.get(key)
        if old is not None and old[0] != ts_ns:
            self._remove_position((old[0], key))
        if old is None or old[0] != ts_ns:
            bisect.insort(self._order, (ts_ns, key))
        self._rows[key] = (ts_ns, value)
        while len(self._rows) > self.cap:
            _, oldest = self._order.pop(0)
            gone = self._rows.pop(oldest)[1]
            self.evicted += 1
            if self.on_evict is not None:
                self.on_evict(oldest, gone)

    def _remove_position(self, position: Position) -> None:
        index = bisect.bisect_left(self._order, position)
        if index < len(self._order) and self._order[index] == position:
            del self._order[index]

    def values(self) -> Iterator[T]:
        """Every row, oldest first."""
        for _, key in self._order:
            yield self._rows[key][1]

    def newest(self) -> T | None:
        if not self._order:
            return None
        return self._rows[self._order[-1][1]][1]

    def page(
        self,
        limit: int,
        *,
        after: Position | None = None,
        from_ns: int | None = None,
        to_ns: int | None = None,
        where: Callable[[T], bool] | None = None,
    ) -> Page[T]:
        """Rows newest first: below `after` (a previous page's `next_after`), with from_ns <= time < to_ns."""
        end = len(self._order)
        if to_ns is not None:
            end = bisect.bisect_left(self._order, (to_ns, ""))
        if after is not None:
            end = min(end, bisect.bisect_left(self._order, after))
        items: list[T] = []
        last: Position | None = None
        index = end - 1
        while index >= 0:
            position = self._order[index]
            if from_ns is not None and position[0] < from_ns:
                break
            value = self._rows[position[1]][1]
            if where is None or where(value):
                if len(items) == limit:
                    return Page(items, last)
                items.append(value)
                last = position
            index -= 1
        return Page(items, None)


class Series(Generic[T]):
    """A bounded time series (points in arrival order; the oldest dropped past the cap), paged like a Table."""

    def __init__(self, cap: int) -> None:
        self._table: Table[T] = Table(cap)
        self._count = 0

    def __len__(self) -> int:
        return len(self._table)

    def append(self, ts_ns: int, value: T) -> None:
        self._count += 1
        self._table.put(f"{self._count:020d}", ts_ns, value)

    def values(self) -> Iterator[T]:
        return self._table.values()

    def page(self, limit: int, **kwargs: Any) -> Page[T]:
        return self._table.page(limit, **kwargs)
