"""Audit settings (TRADING_AUDIT__*): the ledger, and the retention and archival `tradectl compliance report` applies.

The archive keys are validated wherever the section is read (the service at start-up, the report before it reads
anything): a bad one stops it with a message naming its variable. S3 credentials are Vault references only
(`vault:secret/trading/audit/s3#access_key_id`), resolved by load_settings and never printed (SecretStr).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from trading_platform.settings import KafkaSettings, Section, ServiceSettings

BUCKET = r"^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"  # S3's bucket naming rules (lower case, 3-63 characters)
PREFIX = r"^$|^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$"  # key parts joined by /, none empty


class AuditConfig(Section):
    ledger_dir: Path = Path(".run/audit-ledger")
    entries_per_segment: int = Field(10_000, gt=0)
    keep_segments: int = Field(0, ge=0, description="sealed segments to keep; 0 = keep all")
    retention_days: int = Field(0, ge=0, description="archive sealed segments older than this; 0 = never")
    archive_dir: Path | None = Field(None, description="the folder target; default: audit-archive beside the ledger")
    archive_s3_bucket: str = Field("", pattern=BUCKET)
    archive_s3_prefix: str = Field(
        "", pattern=PREFIX, description="key prefix, e.g. prod/ledger (no leading or trailing /)"
    )
    archive_s3_endpoint_url: str = Field(
        "", pattern=r"^$|^https?://[^\s/]+(/\S*)?$", description="an S3-compatible store's URL; empty = AWS S3"
    )
    archive_s3_region: str = Field("us-east-1", pattern=r"^[a-z0-9-]+$")
    archive_s3_access_key_id: SecretStr | None = Field(None, description="vault:secret/trading/audit/s3#access_key_id")
    archive_s3_secret_access_key: SecretStr | None = Field(
        None, description="vault:secret/trading/audit/s3#secret_access_key"
    )

    # Last, so that its check sees every other key (and an error echoes its value, never a credential's).
    archive_target: Literal["folder", "s3"] = Field("folder", validate_default=True)

    @field_validator("archive_target")
    @classmethod
    def _s3_target(cls, target: str, info: ValidationInfo) -> str:
        for name in ("archive_s3_access_key_id", "archive_s3_secret_access_key"):
            value = info.data.get(name)
            if value is not None and not value.get_secret_value().startswith("vault:"):
                raise ValueError(
                    f"TRADING_AUDIT__{name.upper()} must be a Vault reference (vault:<mount>/<path>#<key>), "
                    "not the credential itself"
                )
        if target == "s3":
            missing = [
                f"TRADING_AUDIT__{name.upper()}"
                for name in ("archive_s3_bucket", "archive_s3_access_key_id", "archive_s3_secret_access_key")
                if not info.data.get(name)
            ]
            if missing:
                raise ValueError(f"the s3 target needs {' and '.join(missing)}")
        return target


class AuditSettings(ServiceSettings):
    service_name: str = "audit"
    audit: AuditConfig = AuditConfig()


class ArchiveSettings(ServiceSettings):
    """What `tradectl compliance report` reads: the audit section and Vault (for the S3 credentials); no broker."""

    service_name: str = "tradectl"
    kafka: KafkaSettings | None = None  # type: ignore[assignment]  # the report never connects to the broker
    audit: AuditConfig = AuditConfig()
