"""Secrets from the real Vault-API server (OpenBao): AppRole reads its own path, a denied path is denied, and
settings resolve vault: references."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import hvac
import pytest
from trading_platform.settings import ConfigError, ServiceSettings, load_settings
from trading_platform.testing.plugin import VaultEndpoint
from trading_platform.vault import SecretAccessError, TokenRenewer, login, read_secret

pytestmark = pytest.mark.integration


@pytest.fixture
def approle(vault_endpoint: VaultEndpoint, tmp_path: Path) -> dict[str, str]:
    """A role allowed to read secret/<ns>/allowed only, with secrets at an allowed and a forbidden path."""
    ns = f"t{uuid.uuid4().hex[:8]}"
    root = hvac.Client(url=vault_endpoint.address, token=vault_endpoint.token)
    if "approle/" not in root.sys.list_auth_methods():
        root.sys.enable_auth_method("approle")
    root.secrets.kv.v2.create_or_update_secret(path=f"{ns}/allowed", secret={"api_key": "allowed-value"})
    root.secrets.kv.v2.create_or_update_secret(path=f"{ns}/forbidden", secret={"api_key": "forbidden-value"})
    root.sys.create_or_update_policy(name=ns, policy=f'path "secret/data/{ns}/allowed" {{ capabilities = ["read"] }}')
    root.auth.approle.create_or_update_approle(role_name=ns, token_policies=[ns], token_ttl="30s", token_max_ttl="5m")
    role_id = root.auth.approle.read_role_id(role_name=ns)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role_name=ns)["data"]["secret_id"]
    approle_file = tmp_path / "approle.json"
    approle_file.write_text(json.dumps({"role_id": role_id, "secret_id": secret_id}))
    return {
        "ns": ns,
        "role_id": role_id,
        "secret_id": secret_id,
        "file": str(approle_file),
        "addr": vault_endpoint.address,
    }


def test_approle_reads_its_secret_and_is_denied_elsewhere(approle: dict[str, str]) -> None:
    client = login(approle["addr"], "approle", role_id=approle["role_id"], secret_id=approle["secret_id"])
    assert read_secret(client, f"{approle['ns']}/allowed", "api_key") == "allowed-value"
    with pytest.raises(SecretAccessError, match=f"permission denied reading secret/{approle['ns']}/forbidden"):
        read_secret(client, f"{approle['ns']}/forbidden", "api_key")


def test_wrong_secret_id_is_refused(approle: dict[str, str]) -> None:
    with pytest.raises(SecretAccessError, match="approle login .* was refused"):
        login(approle["addr"], "approle", role_id=approle["role_id"], secret_id="not-the-secret-id")


def test_settings_resolve_vault_references_through_approle(
    approle: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import BaseModel, SecretStr

    class Broker(BaseModel):
        api_key: SecretStr

    class BrokerSettings(ServiceSettings):
        broker: Broker

    vault = {"addr": approle["addr"], "auth_method": "approle", "approle_file": approle["file"]}
    settings = load_settings(
        BrokerSettings,
        service_name="execution",
        kafka={"bootstrap_servers": "x:1"},
        vault=vault,
        broker={"api_key": f"vault:secret/{approle['ns']}/allowed#api_key"},
    )
    assert settings.broker.api_key.get_secret_value() == "allowed-value"
    assert "allowed-value" not in repr(settings)

    with pytest.raises(ConfigError) as error:
        load_settings(
            BrokerSettings,
            service_name="execution",
            kafka={"bootstrap_servers": "x:1"},
            vault=vault,
            broker={"api_key": f"vault:secret/{approle['ns']}/forbidden#api_key"},
        )
    assert "TRADING_BROKER__API_KEY" in str(error.value) and "permission denied" in str(error.value)


def test_token_renewer_renews_a_renewable_token(approle: dict[str, str]) -> None:
    client = login(approle["addr"], "approle", role_id=approle["role_id"], secret_id=approle["secret_id"])
    renewer = TokenRenewer(client, minimum_interval_s=0.1)
    interval = renewer.next_interval_s()
    assert interval is not None and 0.1 <= interval <= 20  # two thirds of the 30 s TTL
    client.auth.token.renew_self()  # what the thread does when the interval has passed
    assert client.auth.token.lookup_self()["data"]["ttl"] > 20


def test_a_vault_that_does_not_answer_is_named_with_the_setting_to_check() -> None:
    """A service started while Vault is away fails closed and says why in the platform's words (not hvac's traceback):
    a listener that accepts connections and never answers, as a frozen Vault does."""
    import socket

    import pytest
    from trading_platform.vault import SecretAccessError, login

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        addr = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(SecretAccessError) as raised:
            login(addr, "token", token="t", timeout_s=0.5)
    message = str(raised.value)
    assert message.startswith(f"Vault at {addr} did not answer") and "TRADING_VAULT__ADDR" in message
