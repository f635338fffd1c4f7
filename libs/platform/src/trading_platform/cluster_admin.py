"""Configures a Kafka cluster from the registries, as its admin: topics, SCRAM users and ACLs.

The dev stack applies this to the embedded broker; in Kubernetes the Strimzi operators apply the same registries
(KafkaTopic and KafkaUser resources under k8s/). It uses confluent-kafka's admin client (librdkafka), since aiokafka's
admin client has no calls for ACLs or SCRAM credentials. Every call waits for the cluster's answer and raises
`ClusterAdminError` naming what failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trading_platform.acls import Grant
from trading_platform.messaging.connection import KafkaConnection
from trading_platform.topics import lookup, replication

TIMEOUT_S = 15.0


class ClusterAdminError(RuntimeError):
    """The cluster refused or did not answer an admin call; the message names it."""


def _admin(connection: KafkaConnection) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({**connection.librdkafka_config(), "client.id": "trading-cluster-admin"})


def _wait(futures: Mapping[Any, Any], what: str) -> None:
    problems = []
    for key, future in futures.items():
        try:
            future.result(timeout=TIMEOUT_S)
        except Exception as error:
            if "already exists" in str(error).lower() or "TOPIC_ALREADY_EXISTS" in str(error):
                continue
            problems.append(f"{key}: {error}")
    if problems:
        raise ClusterAdminError(f"{what} failed: " + "; ".join(problems[:5]))


def broker_count(connection: KafkaConnection) -> int:
    return len(_admin(connection).list_topics(timeout=TIMEOUT_S).brokers)


def ensure_topics(connection: KafkaConnection, physical: Mapping[str, str]) -> list[str]:
    """Create missing topics. `physical` maps each physical name to its registry name (for partitions, retention
    and compaction). Returns the names created."""
    from confluent_kafka.admin import NewTopic

    admin = _admin(connection)
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    replicas, min_insync = replication(len(metadata.brokers))
    missing = [name for name in physical if name not in metadata.topics]
    if not missing:
        return []
    new = []
    for name in missing:
        topic = lookup(physical[name])
        new.append(
            NewTopic(
                name,
                num_partitions=topic.partitions,
                replication_factor=replicas,
                config=topic.config(min_insync),
            )
        )
    _wait(admin.create_topics(new, request_timeout=TIMEOUT_S), "creating topics")
    return missing


def upsert_users(connection: KafkaConnection, passwords: Mapping[str, str]) -> None:
    """Create or change the SCRAM-SHA-512 credential of each user."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    if not passwords:
        return
    upserts = [
        UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password.encode())
        for user, password in passwords.items()
    ]
    admin = _admin(connection)  # kept referenced until the answers are in: a collected client drops its requests
    _wait(admin.alter_user_scram_credentials(upserts, request_timeout=TIMEOUT_S), "setting SCRAM users")


def wait_until_authenticated(connections: Iterable[KafkaConnection], timeout_s: float = TIMEOUT_S) -> None:
    """A SCRAM credential reaches the broker's cache a moment after the controller accepted it: wait until each of
    these connections authenticates, so a client started next is not refused."""
    import time

    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    for connection in connections:
        while True:
            config = {**connection.librdkafka_config(), "client.id": "trading-cluster-admin", "log_level": 0}
            admin = AdminClient(config)
            try:
                admin.list_topics(timeout=1.0)
                break
            except Exception as error:
                if time.monotonic() > deadline:
                    raise ClusterAdminError(f"{connection.username} cannot authenticate: {error}") from None
                time.sleep(0.1)


def _binding(grant: Grant) -> Any:
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    resource = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "transactionalId": ResourceType.TRANSACTIONAL_ID,
    }[grant.resource]
    pattern = ResourcePatternType.PREFIXED if grant.pattern == "prefix" else ResourcePatternType.LITERAL
    operation = {
        "Read": AclOperation.READ,
        "Write": AclOperation.WRITE,
        "Describe": AclOperation.DESCRIBE,
        "Create": AclOperation.CREATE,
    }[grant.operation]
    return AclBinding(resource, grant.name, pattern, grant.principal, "*", operation, AclPermissionType.ALLOW)


def apply_acls(connection: KafkaConnection, grants: Iterable[Grant]) -> int:
    """Create every ACL of the policy (creating an existing ACL is a no-op). Returns how many were applied."""
    bindings = [_binding(grant) for grant in grants]
    if bindings:
        admin = _admin(connection)
        _wait(admin.create_acls(bindings, request_timeout=TIMEOUT_S), "creating ACLs")
    return len(bindings)
