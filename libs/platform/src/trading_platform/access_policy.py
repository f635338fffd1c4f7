"""The access policy: who may call each gRPC method and each gateway route, read from access_policy.yaml.

Deny by default: a method or route that is not listed is refused (`NotInPolicy`), whoever calls. A listed one is
either public or names the roles (users) and/or the services (mTLS identities) allowed. The gRPC server interceptor
(rpc.py) and the gateway check every call here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trading_platform.identity import ROLES, Identity

POLICY_FILE = Path(__file__).with_name("access_policy.yaml")
METHOD_PATTERN = re.compile(r"^/[A-Za-z_][\w.]*\.[A-Za-z_]\w*/[A-Za-z_]\w*$")  # /pkg.Service/Method
ROUTE_PATTERN = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) /\S*$")  # "POST /api/v1/auth/login"
RULE_KEYS = frozenset({"public", "roles", "services"})


class PolicyError(ValueError):
    """The policy file is malformed; the message names the entry and the key."""


class AccessRefused(Exception):
    """The caller may not do this. str(error) is a short reason safe to send back."""


class NotInPolicy(AccessRefused):
    """The method or route is not in the policy, so nobody may call it."""


class Unauthenticated(AccessRefused):
    """The method needs an identity and the call has none."""


class PermissionDenied(AccessRefused):
    """The caller is known but holds none of the roles / is not one of the services allowed."""


@dataclass(frozen=True)
class Rule:
    public: bool = False
    roles: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()

    def check(self, identity: Identity | None, what: str) -> None:
        """Return if `identity` may do `what`; raise Unauthenticated or PermissionDenied otherwise."""
        if self.public:
            return
        if identity is None:
            raise Unauthenticated(f"{what} needs an authenticated caller")
        if identity.kind == "user":
            if identity.has_role(*self.roles):
                return
            if not self.roles:
                raise PermissionDenied(f"{what} is for services only")
            raise PermissionDenied(f"{what} needs role {' or '.join(sorted(self.roles))}")
        if identity.subject in self.services:
            return
        if not self.services:  # for users only: a certificate alone does not authenticate a user
            raise Unauthenticated(f"{what} needs a user's access token")
        raise PermissionDenied(f"service {identity.subject} may not call {what}")


def _rule(name: str, entry: Any) -> Rule:
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{name}: expected a mapping with public, roles or services")
    unknown = set(entry) - RULE_KEYS
    if unknown:
        raise PolicyError(f"{name}: unknown key(s) {sorted(unknown)} (allowed: {sorted(RULE_KEYS)})")
    public = entry.get("public", False)
    if not isinstance(public, bool):
        raise PolicyError(f"{name}.public: expected true or false")
    lists: dict[str, frozenset[str]] = {}
    for key in ("roles", "services"):
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise PolicyError(f"{name}.{key}: expected a list of names")
        lists[key] = frozenset(value)
    bad_roles = sorted(lists["roles"] - set(ROLES))
    if bad_roles:
        raise PolicyError(f"{name}.roles: unknown role(s) {bad_roles} (roles: {', '.join(ROLES)})")
    if public and (lists["roles"] or lists["services"]):
        raise PolicyError(f"{name}: a public entry lists no roles or services")
    if not public and not (lists["roles"] or lists["services"]):
        raise PolicyError(f"{name}: list roles and/or services, or mark it public: true")
    return Rule(public, lists["roles"], lists["services"])


@dataclass(frozen=True)
class AccessPolicy:
    methods: Mapping[str, Rule]
    routes: Mapping[str, Rule]

    @classmethod
    def parse(cls, document: Any, source: str = "policy") -> AccessPolicy:
        if not isinstance(document, Mapping):
            raise PolicyError(f"{source}: expected a mapping with grpc and routes")
        if document.get("version") != 1:
            raise PolicyError(f"{source}.version: expected 1")
        extra = [key for key in document if key not in ("version", "grpc", "routes") and not str(key).startswith("x-")]
        if extra:
            raise PolicyError(f"{source}: unknown key(s) {extra} (version, grpc, routes; x-* for YAML anchors)")
        sections: dict[str, dict[str, Rule]] = {}
        for section, pattern in (("grpc", METHOD_PATTERN), ("routes", ROUTE_PATTERN)):
            entries = document.get(section) or {}
            if not isinstance(entries, Mapping):
                raise PolicyError(f"{source}.{section}: expected a mapping")
            rules: dict[str, Rule] = {}
            for name, entry in entries.items():
                if not isinstance(name, str) or not pattern.match(name):
                    example = "/pkg.Service/Method" if section == "grpc" else "POST /api/v1/path/{id}"
                    raise PolicyError(f"{source}.{section}: {name!r} is not of the form {example!r}")
                rules[name] = _rule(f"{source}.{section}.{name}", entry)
            sections[section] = rules
        return cls(sections["grpc"], sections["routes"])

    @classmethod
    def load(cls, path: Path = POLICY_FILE) -> AccessPolicy:
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise PolicyError(f"{path}: not valid YAML: {error}") from None
        return cls.parse(document, path.name)

    def check_method(self, method: str, identity: Identity | None) -> None:
        """Raise NotInPolicy, Unauthenticated or PermissionDenied unless `identity` may call gRPC `method`."""
        rule = self.methods.get(method)
        if rule is None:
            raise NotInPolicy("method not in the access policy")
        rule.check(identity, method)

    def check_route(self, http_method: str, path_template: str, identity: Identity | None) -> None:
        """The same for a gateway route, named by its path template (`/api/v1/orders/{order_id}`)."""
        route = f"{http_method.upper()} {path_template}"
        rule = self.routes.get(route)
        if rule is None:
            raise NotInPolicy("route not in the access policy")
        rule.check(identity, route)

    def is_public_method(self, method: str) -> bool:
        rule = self.methods.get(method)
        return rule is not None and rule.public


@functools.cache
def default_policy() -> AccessPolicy:
    """The policy shipped with the platform (access_policy.yaml next to this module), loaded once."""
    return AccessPolicy.load()
