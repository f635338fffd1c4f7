"""Apache Kafka as a plain JVM process for the dev stack: one KRaft node that is broker and controller.

Kafka 3.9.2 is pinned, for two reasons measured here: Debian's kcat (librdkafka 2.0.2) fails SCRAM authentication
against every Kafka 4.x broker (4.x checks the SCRAM nonce strictly, and librdkafka before 2.6.1 sends it wrong),
and 3.9 still serves every protocol version that aiokafka 0.14 and faust-streaming use. Its jars come from Maven
Central: `mvn dependency:copy-dependencies` on the pinned pom.xml beside this file, into a cache outside the work
tree (`~/.cache/trading-platform/kafka-<version>`, or $TRADING_KAFKA_CACHE), so a second start resolves nothing.

The broker is secured as in production: its client listener speaks SASL/SCRAM-SHA-512 only, the StandardAuthorizer
denies whatever no ACL allows, and the cluster's own principal (`admin`, used between broker and itself and by the
dev stack to apply users, ACLs and topics) is the only super user besides the controller's. The controller listener
(loopback) authenticates with SASL/PLAIN. Storage is formatted on first start, with the admin's SCRAM credential.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "3.9.2"
ADMIN_USER = "admin"
CONTROLLER_USER = "controller"
HEAP = ("-Xms256m", "-Xmx512m")
# The client JIT only (C1): a dev or test broker lives minutes, and C2's compiling is most of its CPU until then
# (measured: 13.3 s of CPU to ready and 5.5% idle with both tiers, 7.9 s and 3.9% with C1 only, on 2 cores).
JIT = ("-XX:TieredStopAtLevel=1",)
HERE = Path(__file__).parent
POM = HERE / "pom.xml"
LOG4J = HERE / "log4j.properties"


class KafkaSetupError(RuntimeError):
    """Java, Maven or the jars are missing, or the storage could not be formatted; the message says what to do."""


def cache_dir() -> Path:
    explicit = os.environ.get("TRADING_KAFKA_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "trading-platform" / f"kafka-{KAFKA_VERSION}"


def java_binary() -> str:
    """The java launcher (JAVA_HOME first, then PATH), checked to be Java 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    if java is None:
        raise KafkaSetupError(
            "Java 17 is needed to run the embedded Kafka broker and none was found: install Debian's "
            "openjdk-17-jre-headless (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    version = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < 17:
        found = version.splitlines()[0] if version else "?"
        raise KafkaSetupError(
            f"the embedded Kafka broker needs Java 17 or newer, found {java} ({found}): "
            "install Debian's openjdk-17-jre-headless or set JAVA_HOME"
        )
    return java


def resolve_jars(cache: Path | None = None) -> Path:
    """The folder of Kafka's jars, resolved from Maven Central the first time (then cached)."""
    cache = cache or cache_dir()
    lib = cache / "lib"
    marker = cache / ".resolved"
    if marker.exists() and marker.read_text().strip() == POM.read_text().strip() and any(lib.glob("kafka_2.13-*.jar")):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError(
            "Maven is needed once to fetch Kafka's jars from Maven Central and `mvn` was not found: install Debian's "
            "maven (apt-get install maven)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    staging = cache / "lib.partial"
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise KafkaSetupError(f"mvn could not resolve Kafka {KAFKA_VERSION}'s jars from Maven Central:\n{tail}")
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    marker.write_text(POM.read_text())
    return lib


def new_cluster_id() -> str:
    return urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass(frozen=True)
class BrokerConfig:
    """One node, broker and controller, listening on loopback."""

    port: int
    controller_port: int
    data_dir: Path
    admin_password: str
    controller_password: str
    secure: bool = True  # False: PLAINTEXT listeners, no authorizer (the test session's shared broker)
    host: str = "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def properties(self) -> str:
        scram = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN_USER}" password="{self.admin_password}";'
        )
        plain = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{CONTROLLER_USER}" password="{self.controller_password}" '
            f'user_{CONTROLLER_USER}="{self.controller_password}";'
        )
        if self.secure:
            security = {
                "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
                # Transaction markers go over the inter-broker listener: keep it the broker's own port.
                "inter.broker.listener.name": "CLIENT",
                "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
                "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "listener.name.client.scram-sha-512.sasl.jaas.config": scram,
                "sasl.mechanism.controller.protocol": "PLAIN",
                "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
                "listener.name.controller.plain.sasl.jaas.config": plain,
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found": "false",
                "super.users": f"User:{ADMIN_USER};User:{CONTROLLER_USER}",
            }
        else:
            security = {
                "listener.security.protocol.map": "CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "CLIENT",
            }
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"CLIENT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"CLIENT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            **security,
            "log.dirs": str(self.data_dir),
            # One node: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Let a dev or test consumer detect a dead member in seconds (the broker's floor is 6 s by default).
            "group.min.session.timeout.ms": "1000",
            # Topics come from the registry, never from a typo in a consumer.
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.retention.check.interval.ms": "60000",
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
            "transaction.max.timeout.ms": "900000",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())


def format_storage(java: str, lib: Path, config_file: Path, config: BrokerConfig) -> bool:
    """Format the KRaft storage with the admin's SCRAM credential on first start. True when it formatted."""
    if (config.data_dir / "meta.properties").exists():
        return False
    config.data_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            java,
            *HEAP,
            *JIT,
            f"-Dlog4j.configuration=file:{LOG4J}",
            "-cp",
            f"{lib}/*",
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={new_cluster_id()}",  # one "=" word: an id may begin with "-"
            "-c",
            str(config_file),
            *(
                ["--add-scram", f"SCRAM-SHA-512=[name={ADMIN_USER},password={config.admin_password}]"]
                if config.secure
                else []
            ),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise KafkaSetupError(f"formatting the Kafka storage in {config.data_dir} failed:\n{tail}")
    return True


def server_argv(java: str, lib: Path, config_file: Path) -> list[str]:
    return [
        java,
        *HEAP,
        *JIT,
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{LOG4J}",
        "-cp",
        f"{lib}/*",
        "kafka.Kafka",
        str(config_file),
    ]
