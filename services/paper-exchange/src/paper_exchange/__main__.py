"""`paper-exchange` / `python -m paper_exchange`: run the Alpaca-compatible paper exchange."""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal

import uvicorn

from paper_exchange.engine import Exchange, ExchangeConfig
from paper_exchange.server import Faults, ServerConfig, create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="paper-exchange",
        description="An Alpaca-compatible broker and market-data server replaying real daily data with generated "
        "intraday bars. API keys come from PAPER_EXCHANGE_API_KEY_ID and PAPER_EXCHANGE_API_SECRET_KEY "
        "(the dev Vault's secret/trading/alpaca when started by `make up`); PAPER_EXCHANGE_ADMIN_KEY is the key "
        "/admin/*, /docs and /openapi.json require in the X-Admin-Key header (secret/trading/paper-exchange).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18700)
    parser.add_argument("--symbols", default="AAPL,MSFT,IBM,GOOG", help="comma-separated universe")
    parser.add_argument("--source", default="bokeh", choices=["bokeh", "bytetheory"], help="real daily data source")
    parser.add_argument("--start", default="2010-01-04", help="first replayed day (ISO date)")
    parser.add_argument("--end", default="2013-12-31", help="last replayed day (ISO date)")
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated minutes per wall second (1/60 = real time, 0 = manual via /admin/advance)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the intraday generator and of the faults")
    parser.add_argument("--cash", default="100000", help="initial cash")
    parser.add_argument("--spread-bps", type=float, default=2.0)
    parser.add_argument("--slippage-bps", type=float, default=1.0)
    parser.add_argument("--participation", type=float, default=0.10, help="max share of a bar's volume per symbol")
    parser.add_argument("--rate-limit", type=int, default=200, help="requests per minute per account")
    parser.add_argument("--fault-5xx-rate", type=float, default=0.0)
    parser.add_argument("--fault-latency-ms", type=float, default=0.0)
    parser.add_argument("--fault-lost-response-rate", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    key_id = os.environ.get("PAPER_EXCHANGE_API_KEY_ID")
    secret = os.environ.get("PAPER_EXCHANGE_API_SECRET_KEY")
    if not key_id or not secret:
        print(
            "paper-exchange: set PAPER_EXCHANGE_API_KEY_ID and PAPER_EXCHANGE_API_SECRET_KEY (the keys clients "
            "must present); `make up` takes them from the dev Vault",
            file=sys.stderr,
        )
        raise SystemExit(2)
    exchange = Exchange(
        ExchangeConfig(
            symbols=tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()),
            start_date=args.start,
            end_date=args.end,
            source=args.source,
            seed=args.seed,
            initial_cash=Decimal(args.cash),
            spread_bps=args.spread_bps,
            slippage_bps=args.slippage_bps,
            participation=args.participation,
        )
    )
    faults = Faults(
        seed=args.seed,
        error_5xx_rate=args.fault_5xx_rate,
        latency_ms=args.fault_latency_ms,
        lost_response_rate=args.fault_lost_response_rate,
    )
    # PAPER_EXCHANGE_EXTRA_KEYS="id:secret,id:secret": more key pairs for the same account (one per blue-green colour).
    extra = dict(
        pair.split(":", 1) for pair in os.environ.get("PAPER_EXCHANGE_EXTRA_KEYS", "").split(",") if ":" in pair
    )
    # PAPER_EXCHANGE_ADMIN_KEY: the key /admin/*, /docs and /openapi.json require (X-Admin-Key); unset = refused.
    admin_key = os.environ.get("PAPER_EXCHANGE_ADMIN_KEY", "")
    if not admin_key:
        print(
            "paper-exchange: no PAPER_EXCHANGE_ADMIN_KEY: /admin, /docs and /openapi.json are refused", file=sys.stderr
        )
    config = ServerConfig(key_id, secret, args.rate_limit, args.speed, faults, extra_keys=extra, admin_key=admin_key)
    app = create_app(exchange, config)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws="websockets-sansio")


if __name__ == "__main__":
    main()
