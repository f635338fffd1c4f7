"""python -m gateway_service: users, sessions and tokens over HTTP (FastAPI on uvicorn)."""

from trading_platform.service import main as run_service

from gateway_service.app import build
from gateway_service.config import GatewaySettings


def main() -> None:
    run_service(GatewaySettings, build)


if __name__ == "__main__":
    main()
