"""python -m marketdata_service: the one broker market-data connection."""

from trading_platform.service import main as run_service

from marketdata_service.app import build
from marketdata_service.config import MarketDataSettings


def main() -> None:
    run_service(MarketDataSettings, build)


if __name__ == "__main__":
    main()
