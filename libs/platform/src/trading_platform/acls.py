"""The Kafka access policy, generated from the topic registry: who may write, read and join what. Deny by default.

- A service writes only the topics it owns (`Topic.writer`), and their shadow copies (its idle blue-green colour); it
  reads them back too (order-management rebuilds its book from its event log, execution folds its reports).
- A service reads only the topics it consumes (`Topic.readers`); audit and the operator tool read every topic.
- A topic's dead letters are written by those who consume it (and by its writer).
- Each service joins only consumer groups and uses only transactional ids named after it (a prefix match:
  `order-management`, `order-management-shadow`, `order-management-live`...).

`grants()` is the one source: the embedded broker applies it with the Kafka admin API (trading_platform.devstack)
and `tradectl k8s users` writes it as Strimzi KafkaUser resources (k8s/kafka-users/). Nothing here grants a
wildcard, and the cluster's own principal is its only super user.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from trading_platform.topics import (
    ANALYTICS,
    DLQ_SUFFIX,
    READ_EVERYTHING,
    SHADOW_PREFIX,
    TOPICS,
    dead_letter_writers,
    principals,
)

Resource = Literal["topic", "group", "transactionalId"]
Pattern = Literal["literal", "prefix"]
Operation = Literal["Read", "Write", "Describe", "Create"]


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW rule: `user` may do `operation` on the resource `name` (matched literally or as a prefix)."""

    user: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


def grants(namespace: str = "") -> list[Grant]:
    """Every ACL the platform's principals need, for topics and groups prefixed by `namespace` (an isolated run)."""
    rules: set[Grant] = set()

    def topic(user: str, name: str, operation: Operation) -> None:
        rules.add(Grant(user, "topic", namespace + name, "literal", operation))

    for name, registered in TOPICS.items():
        for form in (name, SHADOW_PREFIX + name):
            topic(registered.writer, form, "Write")
            topic(registered.writer, form, "Read")
        for user in registered.co_writers:
            topic(user, name, "Write")
        for reader in registered.readers:
            topic(reader, name, "Read")  # the shadow colour reads the live inputs too
        for user in dead_letter_writers(name):
            topic(user, name + DLQ_SUFFIX, "Write")
        for user in READ_EVERYTHING:
            for form in (name, SHADOW_PREFIX + name, name + DLQ_SUFFIX):
                topic(user, form, "Read")
        # Analytics counts every topic's dead letters, and reads the end offsets of every topic a platform group
        # consumes (consumer lag: offsets only, never the records).
        topic(ANALYTICS, name + DLQ_SUFFIX, "Read")
        for form in (name, SHADOW_PREFIX + name, name + DLQ_SUFFIX):
            topic(ANALYTICS, form, "Describe")
    # Its faust app creates and uses its own internal topics (table changelogs): `analytics-<table>-changelog`.
    for operation in ("Read", "Write", "Describe", "Create"):
        rules.add(Grant(ANALYTICS, "topic", namespace + ANALYTICS + "-", "prefix", operation))
    for user in principals():
        # Consumer lag: analytics reads (Describe) the committed offsets of every principal's groups.
        rules.add(Grant(ANALYTICS, "group", namespace + user, "prefix", "Describe"))
        rules.add(Grant(user, "group", namespace + user, "prefix", "Read"))
        rules.add(Grant(user, "transactionalId", namespace + user, "prefix", "Write"))
        rules.add(Grant(user, "transactionalId", namespace + user, "prefix", "Describe"))
    return sorted(rules)


def by_user(namespace: str = "") -> dict[str, list[Grant]]:
    users: dict[str, list[Grant]] = defaultdict(list)
    for grant in grants(namespace):
        users[grant.user].append(grant)
    return dict(users)


def may(user: str, operation: Operation, topic: str, namespace: str = "") -> bool:
    """Whether the policy lets `user` do `operation` on a topic (what the tests of the policy ask)."""
    return any(
        g.user == user and g.resource == "topic" and g.name == namespace + topic and g.operation == operation
        for g in grants(namespace)
    )
