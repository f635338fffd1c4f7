"""python -m execution_service: the broker edge."""

from trading_platform.service import main as run_service

from execution_service.app import build
from execution_service.config import ExecutionSettings


def main() -> None:
    run_service(ExecutionSettings, build)


if __name__ == "__main__":
    main()
