"""`paper-exchange` / `python -m paper_exchange`: run the Alpaca-compatible paper exchange."""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal
from pathlib import Path

import uvicorn

from paper_exchange.bars import MAX_LIMIT
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
    parser.add_argument("--max-page-size", type=int, default=MAX_LIMIT, help="most bars on one page of /v2/stocks/bars")
    parser.add_argument(
        "--policy-registry",
        default="",
        help="a model registry whose served versions (production, shadow) must not have seen the replay: the "
        "exchange refuses to start when one was trained or validated on a day on or after the replay's first day",
    )
    parser.add_argument(
        "--allow-in-sample", action="store_true", help="with --policy-registry: warn instead of refusing"
    )
    return parser.parse_args(argv)


def check_out_of_sample(registry: str, replay_start: str, allow: bool) -> None:
    """Refuse (or, allowed, warn about) a served policy that has seen the days the exchange replays."""
    try:
        from trading_policy import ModelRegistry
        from trading_policy.periods import in_sample_versions
    except ImportError:
        raise SystemExit("paper-exchange: --policy-registry needs the trading-policy package (libs/policy)") from None

    problems = in_sample_versions(ModelRegistry(Path(registry)), replay_start)
    for problem in problems:
        print(f"paper-exchange: {'WARNING: ' if allow else ''}{problem}", file=sys.stderr)
    if problems and not allow:
        print("paper-exchange: refusing to replay in sample (--allow-in-sample to run anyway)", file=sys.stderr)
        raise SystemExit(2)


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
    if args.policy_registry:
        check_out_of_sample(args.policy_registry, str(exchange.days[0]), args.allow_in_sample)
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
    config = ServerConfig(
        key_id,
        secret,
        args.rate_limit,
        args.speed,
        faults,
        extra_keys=extra,
        admin_key=admin_key,
        max_page_size=args.max_page_size,
    )
    app = create_app(exchange, config)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws="websockets-sansio")


if __name__ == "__main__":
    main()
