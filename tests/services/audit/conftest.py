"""Fixtures of the audit tests: a real S3-compatible store (tests/services/audit/s3store.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from trading_platform.testing.plugin import VaultEndpoint

from tests.services.audit.s3store import S3Store, moto_s3


@pytest.fixture(scope="session")
def s3_store(vault_endpoint: VaultEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    with moto_s3(vault_endpoint, tmp_path_factory.mktemp("moto")) as store:
        yield store
