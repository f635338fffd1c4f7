"""What the embedded Kafka broker needs from the machine, and what it says when something is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from trading_platform import embedded_kafka
from trading_platform.devstack import DevStack, DevStackError, StackPorts, free_port
from trading_platform.embedded_kafka import BrokerConfig, KafkaSetupError


def fake_tool(folder: Path, name: str, script: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with nothing on it but what a test puts there, and no JAVA_HOME."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return folder


def test_no_java_names_the_debian_package(bare_path: Path) -> None:
    with pytest.raises(KafkaSetupError, match="Java 17 is needed.*openjdk-17-jre-headless"):
        embedded_kafka.java_binary()


def test_an_old_java_is_refused(bare_path: Path) -> None:
    fake_tool(bare_path, "java", "echo 'openjdk version \"11.0.22\" 2024-01-16' >&2")
    with pytest.raises(KafkaSetupError, match="needs Java 17 or newer.*11.0.22"):
        embedded_kafka.java_binary()


def test_java_17_is_taken(bare_path: Path) -> None:
    fake_tool(bare_path, "java", "echo 'openjdk version \"17.0.15\" 2025-04-15' >&2")
    assert embedded_kafka.java_binary() == str(bare_path / "java")


def test_no_maven_and_no_cached_jars_names_the_package(bare_path: Path, tmp_path: Path) -> None:
    with pytest.raises(KafkaSetupError, match="Maven is needed.*apt-get install maven"):
        embedded_kafka.resolve_jars(tmp_path / "empty-cache")


def test_cached_jars_need_no_maven(bare_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "lib").mkdir(parents=True)
    (cache / "lib" / f"kafka_2.13-{embedded_kafka.KAFKA_VERSION}.jar").write_bytes(b"")
    (cache / ".resolved").write_text(embedded_kafka.POM.read_text())
    assert embedded_kafka.resolve_jars(cache) == cache / "lib"


def test_a_failed_resolution_shows_what_maven_said(bare_path: Path, tmp_path: Path) -> None:
    fake_tool(bare_path, "mvn", "echo '[ERROR] Could not resolve org.apache.kafka:kafka_2.13'; exit 1")
    with pytest.raises(KafkaSetupError, match="(?s)could not resolve.*Could not resolve org.apache.kafka"):
        embedded_kafka.resolve_jars(tmp_path / "cache")


def test_dev_stack_start_without_java_fails_with_one_line(bare_path: Path, tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "run", StackPorts(free_port(), free_port(), free_port()))
    with pytest.raises(DevStackError) as raised:
        stack._up_kafka(stack.endpoints(), 5)
    assert "openjdk-17-jre-headless" in str(raised.value) and "\n" not in str(raised.value)


def test_the_secured_broker_config_denies_by_default() -> None:
    config = BrokerConfig(19092, 19093, Path("/data"), "admin-secret", "controller-secret")
    properties = dict(line.split("=", 1) for line in config.properties().splitlines())
    assert properties["listener.security.protocol.map"] == "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
    assert properties["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["inter.broker.listener.name"] == "CLIENT"  # transaction markers on the broker's own port
    assert properties["auto.create.topics.enable"] == "false"
    assert "ANONYMOUS" not in properties["super.users"]
    assert properties["listeners"].count("127.0.0.1") == 2  # loopback only


def test_cache_folder_is_outside_the_work_tree(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRADING_KAFKA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert embedded_kafka.cache_dir() == tmp_path / "trading-platform" / f"kafka-{embedded_kafka.KAFKA_VERSION}"
    monkeypatch.setenv("TRADING_KAFKA_CACHE", "/elsewhere")
    assert embedded_kafka.cache_dir() == Path("/elsewhere")
    assert not str(embedded_kafka.cache_dir()).startswith(os.getcwd())


@pytest.mark.integration
def test_a_cluster_id_that_begins_with_a_dash_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A random KRaft cluster id is URL-safe base64 and may begin with "-", which the storage tool once read as a flag
    (a start failed about one time in 64)."""
    monkeypatch.setattr(embedded_kafka, "new_cluster_id", lambda: "-dashFirstClusterId123")
    java = embedded_kafka.java_binary()
    lib = embedded_kafka.resolve_jars()
    config = BrokerConfig(free_port(), free_port(), tmp_path / "data", "admin-secret", "controller-secret")
    config_file = tmp_path / "server.properties"
    config_file.write_text(config.properties())
    assert embedded_kafka.format_storage(java, lib, config_file, config)
    assert "cluster.id=-dashFirstClusterId123" in (tmp_path / "data" / "meta.properties").read_text()
