"""The access policy: every RPC of every proto (and every gateway route) is listed, and the rules deny by default."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from trading_platform.access_policy import (
    AccessPolicy,
    NotInPolicy,
    PermissionDenied,
    PolicyError,
    Unauthenticated,
    default_policy,
)
from trading_platform.identity import ADMIN, RISK_OFFICER, ROLES, TRADER, VIEWER, Identity

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"


def proto_methods() -> set[str]:
    """Every `/package.Service/Method` the generated contracts define, from the .proto files on disk."""
    methods = set()
    for proto in sorted(PROTO_ROOT.rglob("*.proto")):
        module = importlib.import_module(".".join(proto.relative_to(PROTO_ROOT).with_suffix("").parts) + "_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            methods |= {f"/{service.full_name}/{method.name}" for method in service.methods}
    return methods


def user(*roles: str) -> Identity:
    return Identity("alice", "user", frozenset(roles), "sid-1")


def test_every_rpc_of_every_proto_is_in_the_policy() -> None:
    methods = proto_methods()
    assert len(methods) >= 20  # the enumeration itself works (risk, oms, execution, signal, market data, audit)
    missing = sorted(methods - set(default_policy().methods))
    assert not missing, f"add these methods to access_policy.yaml: {missing}"


def test_the_policy_lists_no_method_that_does_not_exist() -> None:
    served_elsewhere = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"}
    reflection = {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}
    stale = sorted(set(default_policy().methods) - proto_methods() - served_elsewhere - reflection)
    assert not stale, f"these policy entries name no RPC: {stale}"


def test_every_gateway_route_is_in_the_policy() -> None:
    gateway = pytest.importorskip("gateway_service.app", reason="the gateway is not built yet")
    from fastapi.routing import APIRoute

    app = gateway.create_app() if hasattr(gateway, "create_app") else gateway.app
    routes = {f"{verb} {route.path}" for route in app.routes if isinstance(route, APIRoute) for verb in route.methods}
    assert routes
    missing = sorted(routes - set(default_policy().routes))
    assert not missing, f"add these routes to access_policy.yaml: {missing}"


def test_only_order_management_may_ask_risk_for_a_decision() -> None:
    policy = default_policy()
    method = "/trading.risk.v1.RiskService/CheckOrder"
    policy.check_method(method, Identity("order-management", "service"))
    for caller in (Identity("signal", "service"), Identity("gateway", "service"), user(*ROLES)):
        with pytest.raises(PermissionDenied):
            policy.check_method(method, caller)
    with pytest.raises(Unauthenticated):
        policy.check_method(method, None)


def test_roles_match_their_jobs() -> None:
    policy = default_policy()
    policy.check_method("/trading.oms.v1.OrderService/SubmitOrder", user(TRADER))
    policy.check_method("/trading.risk.v1.RiskService/SetTradingState", user(RISK_OFFICER))
    for role in ROLES:  # every role reads
        policy.check_method("/trading.oms.v1.OrderService/ListOrders", user(role))
    with pytest.raises(PermissionDenied, match="trader"):
        policy.check_method("/trading.oms.v1.OrderService/SubmitOrder", user(VIEWER, ADMIN))
    with pytest.raises(PermissionDenied, match="risk-officer"):
        policy.check_method("/trading.risk.v1.RiskService/UpdateLimits", user(TRADER))
    with pytest.raises(Unauthenticated, match="access token"):  # a service certificate is not a user with a role
        policy.check_method("/trading.oms.v1.OrderService/SubmitOrder", Identity("signal", "service"))
    policy.check_method("/grpc.health.v1.Health/Check", None)


def test_a_method_or_route_not_listed_is_refused_to_everyone() -> None:
    policy = default_policy()
    for caller in (None, user(*ROLES), Identity("order-management", "service")):
        with pytest.raises(NotInPolicy):
            policy.check_method("/trading.risk.v1.RiskService/DropAllLimits", caller)
        with pytest.raises(NotInPolicy):
            policy.check_route("DELETE", "/api/v1/everything", caller)


@pytest.mark.parametrize(
    ("document", "names"),
    [
        ({"version": 2, "grpc": {}}, "version"),
        ({"version": 1, "grpc": {"/a.B/C": {"roles": ["superuser"]}}}, "superuser"),
        ({"version": 1, "grpc": {"/a.B/C": {}}}, "/a.B/C"),
        ({"version": 1, "grpc": {"/a.B/C": {"public": True, "roles": ["viewer"]}}}, "public"),
        ({"version": 1, "grpc": {"/a.B/C": {"role": ["viewer"]}}}, "role"),
        ({"version": 1, "grpc": {"a.B.C": {"public": True}}}, "a.B.C"),
        ({"version": 1, "routes": {"/api/v1/x": {"public": True}}}, "/api/v1/x"),
        ({"version": 1, "grcp": {}}, "grcp"),
    ],
)
def test_a_malformed_policy_is_refused_naming_the_entry(document: dict[str, object], names: str) -> None:
    with pytest.raises(PolicyError, match=names.replace(".", r"\.")):
        AccessPolicy.parse(document)
