"""python -m oms_service: orders and positions of record."""

import sys

from trading_platform.service import main as run_service

from oms_service.app import HALTED, build
from oms_service.config import OmsSettings


def main() -> None:
    run_service(OmsSettings, build)
    if HALTED:  # it stopped writing (fenced, or its book could not follow the log): let the supervisor know
        print(f"order-management stopped: {HALTED[0]}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
