"""BookLocks: symbols side by side, one symbol in sequence, reconciliation alone with the whole book."""

from __future__ import annotations

import asyncio

from oms_service.app import BookLocks


async def test_symbols_run_side_by_side_and_one_symbol_in_sequence() -> None:
    locks = BookLocks()
    log: list[str] = []

    async def work(symbol: str, name: str) -> None:
        async with locks.symbol(symbol):
            log.append(f"{name} in")
            await asyncio.sleep(0.02)
            log.append(f"{name} out")

    await asyncio.gather(work("AAPL", "a1"), work("MSFT", "m1"), work("AAPL", "a2"))
    assert log[:2] == ["a1 in", "m1 in"]  # different symbols: both inside at once
    assert log.index("a2 in") > log.index("a1 out")  # the same symbol: one after the other


async def test_whole_book_waits_for_every_symbol_and_holds_off_new_ones() -> None:
    locks = BookLocks()
    log: list[str] = []

    async def order(symbol: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with locks.symbol(symbol):
            log.append(f"{symbol} in")
            await asyncio.sleep(0.03)
            log.append(f"{symbol} out")

    async def reconcile() -> None:
        await asyncio.sleep(0.01)  # while AAPL is inside
        async with locks.whole_book():
            log.append("reconcile in")
            await asyncio.sleep(0.03)
            log.append("reconcile out")

    await asyncio.gather(order("AAPL", 0), reconcile(), order("MSFT", 0.02))
    assert log == ["AAPL in", "AAPL out", "reconcile in", "reconcile out", "MSFT in", "MSFT out"]
