"""Audit settings (TRADING_AUDIT__*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from trading_platform.settings import Section, ServiceSettings


class AuditConfig(Section):
    ledger_dir: Path = Path(".run/audit-ledger")
    entries_per_segment: int = Field(10_000, gt=0)
    keep_segments: int = Field(0, ge=0, description="sealed segments to keep; 0 = keep all")


class AuditSettings(ServiceSettings):
    service_name: str = "audit"
    audit: AuditConfig = AuditConfig()
