"""python -m audit_service: the hash-chained ledger of every message."""

from trading_platform.service import main as run_service

from audit_service.app import build
from audit_service.config import AuditSettings


def main() -> None:
    run_service(AuditSettings, build)


if __name__ == "__main__":
    main()
