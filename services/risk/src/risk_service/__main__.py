"""python -m risk_service: the pre-trade risk gate."""

from trading_platform.service import main as run_service

from risk_service.app import build
from risk_service.config import RiskSettings


def main() -> None:
    run_service(RiskSettings, build)


if __name__ == "__main__":
    main()
