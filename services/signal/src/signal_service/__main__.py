"""python -m signal_service: features and the policy, bars in, signals out."""

from trading_platform.service import main as run_service

from signal_service.app import build
from signal_service.config import SignalSettings


def main() -> None:
    run_service(SignalSettings, build)


if __name__ == "__main__":
    main()
