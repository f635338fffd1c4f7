"""python -m oms_service: orders and positions of record."""

from trading_platform.service import main as run_service

from oms_service.app import build
from oms_service.config import OmsSettings


def main() -> None:
    run_service(OmsSettings, build)


if __name__ == "__main__":
    main()
