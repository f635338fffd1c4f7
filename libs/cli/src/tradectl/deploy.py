"""tradectl deploy status|promote|rollback: Kafka-aware blue-green (docs/architecture.md section 9).

Each colour of a service started with TRADING_DEPLOYMENT__BLUE_GREEN=true reads the live colour from Redis and takes
its role from it (trading_platform.deployment). Promotion is one explicit command:

1. checks: the target colour is up and following (it reported within the last few seconds, in the shadow role);
   its gRPC health is SERVING (`--address`, e.g. the chart's `<service>-preview` Service); its shadow results agree
   with live (the service's deterministic outputs on `shadow.<topic>` since it started, against the live topic);
2. flips the live colour: both colours restart their Kafka consumers and producers in their new roles; a service
   that holds the broker connection hands it over through a lease, the old colour letting go first;
3. records a `DeploymentChanged` on platform.deployments.v1, which the audit service appends to its ledger;
4. waits until both colours report their new roles.

Rollback is the same command the other way (back to the colour that was live before). In Kubernetes the Service
selector moves with `helm upgrade --set blueGreen.activeColour=<colour>` (the deploy workflow does both).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from trading_platform.deployment import COLOURS, DeploymentControl, other
from trading_platform.devstack import DEFAULT_RUN_DIR, DevStack, Endpoints
from trading_platform.messaging.connection import KafkaConnection

from tradectl.topics import connection_from_env

console = Console(stderr=True)
app = typer.Typer(
    help="Blue-green deployments that understand Kafka: status, promote (checks, flip, audit), rollback.",
    no_args_is_help=True,
)
# The output whose records are deterministic given the inputs (keys are client order ids or bar-caused ids):
# the shadow colour's copy must agree with live's before it may take over.
COMPARED_OUTPUT = {"order-management": "oms.commands.v1", "signal": "signal.signals.v1", "risk": "risk.decisions.v1"}
SERVICES = ("market-data", "signal", "order-management", "risk", "execution", "audit", "analytics")


@dataclass
class Target:
    redis_url: str
    kafka: KafkaConnection | str  # a bare bootstrap string: an unauthenticated cluster
    namespace: str


@dataclass
class Outcome:
    service: str
    action: str
    from_colour: str
    to_colour: str
    checks: list[str] = field(default_factory=list)
    passed: bool = True
    forced: bool = False

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(f"{name}: {'ok' if ok else 'FAILED'} ({detail})")
        self.passed = self.passed and ok


def resolve(run_dir: Path, redis_url: str | None, kafka: str | None, namespace: str | None) -> Target:
    endpoints = DevStack.from_run_dir(run_dir).endpoints()
    return Target(
        redis_url or os.environ.get("TRADING_REDIS__URL") or endpoints.redis_url,
        _kafka_connection(kafka or os.environ.get("TRADING_KAFKA__BOOTSTRAP_SERVERS"), endpoints),
        namespace if namespace is not None else os.environ.get("TRADING_KAFKA__NAMESPACE", ""),
    )


def _kafka_connection(bootstrap: str | None, endpoints: Endpoints) -> KafkaConnection:
    """A given bootstrap with the credentials from the environment, else the dev stack's operator principal."""
    return connection_from_env(bootstrap) if bootstrap else endpoints.kafka_admin()


async def _keys(target: Target, topic: str, since_ns: int) -> list[str]:
    from trading_platform.messaging import replay

    keys = []
    async for message in replay(target.kafka, topic, namespace=target.namespace, timeout_s=10):
        envelope = getattr(message.value, "envelope", None)
        if envelope is None or envelope.ts_init >= since_ns:
            keys.append(message.key or "")
    return keys


async def shadow_agreement(target: Target, service: str, since: float, min_agreement: float) -> tuple[bool, str]:
    topic = COMPARED_OUTPUT.get(service)
    if topic is None:
        return True, f"{service} has no deterministic output to compare; health and lease checks apply"
    since_ns = int(since * 1e9)
    shadow = await _keys(target, "shadow." + topic, since_ns)
    live = set(await _keys(target, topic, since_ns))
    if not shadow:
        return (not live), f"shadow wrote nothing to shadow.{topic} while live wrote {len(live)}"
    agreeing = sum(1 for key in shadow if key in live) / len(shadow)
    return (
        agreeing >= min_agreement,
        f"{agreeing:.0%} of {len(shadow)} shadow.{topic} keys match live (need {min_agreement:.0%})",
    )


async def flip(
    target: Target,
    service: str,
    to_colour: str | None,
    action: str,
    address: str | None,
    min_agreement: float,
    force: bool,
    reason: str,
    timeout_s: float,
) -> Outcome:
    from trading.deploy.v1 import deploy_pb2
    from trading_platform import rpc
    from trading_platform.envelope import new_envelope
    from trading_platform.messaging import Publisher, ensure_topics

    from tradectl.grpc_client import certificate

    # health is public: tradectl's certificate is enough (a process that configured its own client keeps it)
    security = rpc.default_client_security() if rpc.configured("client") else rpc.ClientSecurity(certificate())

    control = DeploymentControl.from_url(target.redis_url, service, target.namespace)
    try:
        live = await control.live_colour()
        if action == "rollback":
            history = await control.history()
            to_colour = history[-1]["from_colour"] if history else other(live)
        assert to_colour is not None
        outcome = Outcome(service, action, live, to_colour, forced=force)
        if to_colour == live:
            outcome.check("target", False, f"{to_colour} is already live")
            return outcome
        # The target may still be starting (a role change restarts it): give it until half the timeout.
        deadline = time.monotonic() + timeout_s / 2
        while True:
            report = await control.reported(to_colour)
            age = time.time() - float(report.get("at", 0))
            following = bool(report) and age < 5 and report.get("role") == "shadow" and report.get("ready") == "1"
            state = await rpc.health_status(address, timeout_s=2.0, security=security) if address else "SERVING"
            if (following and state == "SERVING") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        outcome.check(
            "following",
            following,
            f"{to_colour} reported role {report.get('role')}, ready {report.get('ready')}, {age:.1f} s ago"
            if report
            else f"{to_colour} reported nothing (is it running with TRADING_DEPLOYMENT__BLUE_GREEN=true?)",
        )
        if address:
            outcome.check("health", state == "SERVING", f"{address} is {state}")
        if report:
            ok, detail = await shadow_agreement(target, service, float(report.get("since", 0)), min_agreement)
            outcome.check("shadow results", ok, detail)
        if not outcome.passed and not force:
            return outcome
        event = deploy_pb2.DeploymentChanged(
            service=service,
            action=action,
            from_colour=live,
            to_colour=to_colour,
            checks=outcome.checks,
            forced=force and not outcome.passed,
            operator=getpass.getuser(),
            reason=reason,
        )
        event.envelope.CopyFrom(new_envelope("tradectl"))
        await ensure_topics(target.kafka, ["platform.deployments.v1"], namespace=target.namespace)
        async with Publisher(target.kafka, "tradectl", namespace=target.namespace) as publisher:
            await control.set_live(
                to_colour,
                {"action": action, "from_colour": live, "to_colour": to_colour, "at": time.time(), "reason": reason},
            )
            await publisher.publish("platform.deployments.v1", event, key=service)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            new, old = await control.reported(to_colour), await control.reported(live)
            if new.get("role") == "live" and old.get("role", "shadow") == "shadow":
                outcome.checks.append(f"flipped: {to_colour} live, {live} shadow")
                return outcome
            await asyncio.sleep(0.2)
        outcome.check("flip", False, f"the colours did not report their new roles within {timeout_s:.0f} s")
        return outcome
    finally:
        await control.close()


RUN_DIR = typer.Option(DEFAULT_RUN_DIR, "--run-dir", help="the local run whose Redis and Kafka to use")
REDIS = typer.Option(None, "--redis-url", help="Redis URL (default: $TRADING_REDIS__URL, else the local run's)")
KAFKA = typer.Option(None, "--kafka", help="Kafka bootstrap (default: $TRADING_KAFKA__BOOTSTRAP_SERVERS, else local)")
NAMESPACE = typer.Option(None, "--namespace", help="topic and key namespace (default: $TRADING_KAFKA__NAMESPACE)")


def _finish(outcome: Outcome, as_json: bool) -> None:
    data = outcome.__dict__
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        for line in outcome.checks:
            console.print(("[green]" if ": ok" in line or line.startswith("flipped") else "[red]") + line)
        verdict = "done" if outcome.passed or outcome.forced else "refused (nothing changed; --force to override)"
        console.print(f"{outcome.action} {outcome.service}: {outcome.from_colour} -> {outcome.to_colour}: {verdict}")
    if not (outcome.passed or outcome.forced):
        raise typer.Exit(1)


@app.command("promote")
def promote(
    service: str = typer.Argument(..., help=f"one of {', '.join(SERVICES)}"),
    to: str = typer.Option(..., "--to", help="the colour to make live (blue or green)"),
    address: str | None = typer.Option(None, "--address", help="gRPC address of that colour, checked for health"),
    min_agreement: float = typer.Option(0.9, "--min-agreement", help="shadow outputs that must match live"),
    force: bool = typer.Option(False, "--force", help="flip even if a check fails (recorded as forced)"),
    reason: str = typer.Option("", "--reason", help="why, recorded in the audit ledger"),
    timeout_s: float = typer.Option(30.0, "--timeout", help="seconds to wait for both colours to flip"),
    run_dir: Path = RUN_DIR,
    redis_url: str | None = REDIS,
    kafka: str | None = KAFKA,
    namespace: str | None = NAMESPACE,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check the idle colour, make it live, make the other one shadow, and record it in the audit ledger."""
    if to not in COLOURS:
        raise typer.BadParameter(f"--to must be one of {', '.join(COLOURS)}")
    target = resolve(run_dir, redis_url, kafka, namespace)
    outcome = asyncio.run(flip(target, service, to, "promote", address, min_agreement, force, reason, timeout_s))
    _finish(outcome, as_json)


@app.command("rollback")
def rollback(
    service: str = typer.Argument(..., help=f"one of {', '.join(SERVICES)}"),
    address: str | None = typer.Option(None, "--address", help="gRPC address of the colour rolled back to"),
    force: bool = typer.Option(False, "--force", help="flip even if a check fails"),
    reason: str = typer.Option("rollback", "--reason"),
    timeout_s: float = typer.Option(30.0, "--timeout"),
    run_dir: Path = RUN_DIR,
    redis_url: str | None = REDIS,
    kafka: str | None = KAFKA,
    namespace: str | None = NAMESPACE,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Make the colour that was live before the last promotion live again (same checks, same record)."""
    target = resolve(run_dir, redis_url, kafka, namespace)
    outcome = asyncio.run(flip(target, service, None, "rollback", address, 0.0, force, reason, timeout_s))
    _finish(outcome, as_json)


@app.command("status")
def status(
    services: list[str] = typer.Argument(None, help="services (default: all)"),
    run_dir: Path = RUN_DIR,
    redis_url: str | None = REDIS,
    namespace: str | None = NAMESPACE,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The live colour of each service, what each colour reports, who holds the broker lease, the last change."""
    target = resolve(run_dir, redis_url, "unused", namespace)

    async def gather() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for service in services or SERVICES:
            control = DeploymentControl.from_url(target.redis_url, service, target.namespace)
            try:
                history = await control.history()
                out[service] = {
                    "live": await control.live_colour(),
                    "colours": {c: await control.reported(c) for c in COLOURS},
                    "lease": await control.lease_holder(),
                    "last_change": history[-1] if history else None,
                }
            finally:
                await control.close()
        return out

    data = asyncio.run(gather())
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for service, item in data.items():
        colours = ", ".join(f"{c}={r.get('role', 'absent')}" for c, r in item["colours"].items())
        lease = f", broker lease: {item['lease']}" if item["lease"] else ""
        typer.echo(f"{service:18s} live {item['live']:5s} ({colours}{lease})")
