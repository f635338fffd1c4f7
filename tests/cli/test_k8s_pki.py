"""`tradectl k8s pki` sets up a cluster's Vault PKI the way the dev stack does (the same code), so the policies of
k8s/vault (pki_int/issue/<service>) have roles to issue under."""

from __future__ import annotations

import hvac
import pytest
from tradectl.main import app
from trading_platform import pki
from trading_platform.testing.plugin import VaultEndpoint
from typer.testing import CliRunner

pytestmark = pytest.mark.integration


def test_k8s_pki_makes_one_role_per_service_each_issuing_only_its_own_name(vault_endpoint: VaultEndpoint) -> None:
    runner = CliRunner()
    env = {"VAULT_ADDR": vault_endpoint.address, "VAULT_TOKEN": vault_endpoint.token}
    for _ in range(2):  # idempotent: a second run changes nothing and succeeds
        result = runner.invoke(app, ["k8s", "pki"], env=env)
        assert result.exit_code == 0, result.output
        assert "PKI ready" in result.output and "order-management" in result.output
    client = hvac.Client(url=vault_endpoint.address, token=vault_endpoint.token)
    issued = client.secrets.pki.generate_certificate(
        "risk", "risk", mount_point=pki.INTERMEDIATE_MOUNT, extra_params={"ttl": "5m"}
    )
    assert "BEGIN CERTIFICATE" in issued["data"]["certificate"]
    with pytest.raises(hvac.exceptions.InvalidRequest):  # the risk role cannot name another service
        client.secrets.pki.generate_certificate("risk", "order-management", mount_point=pki.INTERMEDIATE_MOUNT)
    bad = runner.invoke(app, ["k8s", "pki"], env={"VAULT_ADDR": vault_endpoint.address, "VAULT_TOKEN": "not-a-token"})
    assert bad.exit_code == 2 and "--vault-token" in bad.output
