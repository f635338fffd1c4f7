"""The market index the portfolio agent observes: the S&P 500 closes shipped with skfolio (`sp500_index.csv.gz`, next
to the sp500 dataset trading_datasets reads the 20 symbols from), aligned to a panel's dates."""

from __future__ import annotations

import csv
import gzip
import io
from functools import lru_cache

import numpy as np
from trading_datasets.daily import data_file

INDEX_FILE = "sp500_index.csv.gz"


@lru_cache(maxsize=1)
def _sp500() -> tuple[np.ndarray, np.ndarray]:
    path = data_file("skfolio").parent / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the S&P 500 index ships with skfolio==1.12.2")
    rows = [row for row in csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode())) if row][1:]
    return np.array([r[0] for r in rows], dtype="datetime64[D]"), np.array([float(r[1]) for r in rows])


def index_closes(dates: np.ndarray) -> np.ndarray:
    """S&P 500 closes on `dates` (datetime64[D]); a date the index does not have raises ValueError naming it."""
    index_dates, closes = _sp500()
    wanted = np.asarray(dates, dtype="datetime64[D]")
    at = np.searchsorted(index_dates, wanted)
    at = np.minimum(at, len(index_dates) - 1)
    missing = index_dates[at] != wanted
    if missing.any():
        raise ValueError(
            f"the S&P 500 index has no close on {wanted[missing][0]} ({int(missing.sum())} date(s) missing; it covers "
            f"{index_dates[0]} .. {index_dates[-1]})"
        )
    return closes[at]
