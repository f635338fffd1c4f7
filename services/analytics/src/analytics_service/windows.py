"""Tumbling windows (faust.windows.TumblingWindow) and the row keys of the windowed tables.

Every table row is one (subject, window): its key is `<subject>|<window_start>|<window_end>` (UNIX ns), the key of
its topic (proto/trading/analytics/v1/analytics.proto): the end tells a 1-minute window from the day window that
starts at the same instant, so compaction keeps both. Each event falls into one window of each configured size.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from faust.windows import TumblingWindow

NS = 1_000_000_000
ALL = "_all"  # the subject of a row over every symbol


@dataclass(frozen=True)
class Span:
    start_ns: int
    end_ns: int

    def key(self, subject: str) -> str:
        return f"{subject}|{self.start_ns}|{self.end_ns}"


class Windows:
    """The window sizes of the tables and which window of each an event time falls into."""

    def __init__(self, sizes_s: tuple[int, ...], keep_s: int) -> None:
        self.sizes_s = sizes_s
        self.keep_s = keep_s
        self._windows = [TumblingWindow(size, expires=size + keep_s) for size in sizes_s]

    def spans(self, ts_ns: int) -> list[Span]:
        spans = []
        for window, size in zip(self._windows, self.sizes_s, strict=True):
            (start, _end), *_ = window.ranges(ts_ns / NS)
            start_ns = round(start) * NS
            spans.append(Span(start_ns, start_ns + size * NS))
        return spans

    def shortest(self, ts_ns: int) -> Span:
        return self.spans(ts_ns)[0]

    def expired(self, row: dict[str, Any], now_ns: int) -> bool:
        """A row whose window ended more than keep_s ago."""
        return int(row.get("window_end", 0)) + self.keep_s * NS < now_ns


def evict(table: MutableMapping[str, Any], windows: Windows, now_ns: int) -> int:
    """Drop the rows of windows that ended more than keep_s ago; returns how many."""
    stale = [key for key, row in list(table.items()) if windows.expired(row, now_ns)]
    for key in stale:
        del table[key]
    return len(stale)
