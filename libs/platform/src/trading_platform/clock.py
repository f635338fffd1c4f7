"""Clocks: one interface, a live and a simulated implementation, so replay and backtests run the same code as live."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """UNIX time in nanoseconds."""
        ...


class LiveClock:
    def now_ns(self) -> int:
        return time.time_ns()


class SimulatedClock:
    """Time moves only when told: set() to a data timestamp during replay, advance() in tests."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns

    def now_ns(self) -> int:
        return self._now_ns

    def set(self, ns: int) -> None:
        if ns < self._now_ns:
            raise ValueError(f"a simulated clock does not go back: {ns} < {self._now_ns}")
        self._now_ns = ns

    def advance(self, ns: int) -> int:
        if ns < 0:
            raise ValueError("advance by a non-negative amount")
        self._now_ns += ns
        return self._now_ns
