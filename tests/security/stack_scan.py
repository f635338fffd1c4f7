"""A running stack leaks no secret: start the platform as tests/e2e does (embedded Kafka, Redis and Vault, the paper
exchange, the six services), let it trade, then look for secrets in what it wrote.

Scanned: every log under the run folder (.run/logs of this run), every record of every registered topic (read with
the platform's replay reader as the admin principal, decoded to JSON), and every entry of the audit ledger. Two
scans: every secret value the dev Vault holds (KV secrets, the root token, the AppRole secret ids, the Kafka admin
password), searched for verbatim; and detect-secrets over the same text (its heuristics, for secrets the stack did
not put in Vault)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import hvac
from google.protobuf.json_format import MessageToDict, MessageToJson

from tests.security.report import REPORT_DIR, Check
from tests.security.secrets_scan import describe, scan

TRADE_SECONDS = float(os.environ.get("SECURITY_TRADE_SECONDS", "40"))
MIN_SECRET_LENGTH = 8  # shorter values ("true", a user name) are not secrets and would match anywhere
# Fields of a Vault secret that are not secret: a Kafka principal's user name is its service's name, in every log.
NOT_SECRET_FIELDS = {"username", "paper"}


def vault_values(client: hvac.Client, path: str = "trading") -> dict[str, str]:
    """Every value under secret/<path> (KV v2), by where it lives."""
    found: dict[str, str] = {}
    keys = client.secrets.kv.v2.list_secrets(path=path)["data"]["keys"]
    for key in keys:
        child = f"{path}/{key.rstrip('/')}"
        if key.endswith("/"):
            found |= vault_values(client, child)
            continue
        data = client.secrets.kv.v2.read_secret_version(path=child, raise_on_deleted_version=True)["data"]["data"]
        found |= {f"secret/{child}#{name}": str(value) for name, value in data.items()}
    return found


def known_secrets(endpoints: Any) -> dict[str, str]:
    client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
    values = vault_values(client) | {"vault root token": endpoints.vault_token()}
    for path in sorted(Path(endpoints.approle_dir).glob("*.json")):
        values[f"AppRole secret id of {path.stem}"] = json.loads(path.read_text())["secret_id"]
    if endpoints.kafka_admin_file:
        values["Kafka admin password"] = json.loads(Path(endpoints.kafka_admin_file).read_text())["password"]
    return {
        where: value
        for where, value in values.items()
        if len(value) >= MIN_SECRET_LENGTH and where.rpartition("#")[2] not in NOT_SECRET_FIELDS
    }


def root_token_banner(run_dir: Path, where: str, what: str) -> bool:
    """OpenBao's dev server prints its root token in its own log when it starts: allowed there only, and only while
    that log is readable by its owner alone (as the token file is: trading_platform.devstack)."""
    log = run_dir / "logs" / "vault.log"
    return where == "log vault.log" and what == "vault root token" and log.stat().st_mode & 0o077 == 0


async def topic_payloads(connection: Any) -> tuple[dict[str, list[str]], list[str]]:
    from trading_platform.messaging import replay
    from trading_platform.topics import TOPICS

    payloads: dict[str, list[str]] = {}
    unread = []
    for name in sorted(TOPICS):
        try:
            payloads[name] = [MessageToJson(m.value, indent=None) async for m in replay(connection, name, timeout_s=60)]
        except Exception as error:  # a topic that cannot be read is reported, not skipped silently
            unread.append(f"{name}: {type(error).__name__}: {error}")
    return payloads, unread


ID_LIKE = re.compile(
    r"[0-9a-fA-F-]{8,}|[0-9.:+TZ -]+|[A-Z_]+|[a-z_.]+|[a-z0-9.-]+:\d+"  # ids, hashes, numbers, times, enum names
)


BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4}){4,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
PRINTABLE = re.compile(rb"[\x20-\x7e]{4,}")  # the text runs inside bytes (a serialised record, a header)


def distinct_strings(text: str) -> list[str]:
    """The text as detect-secrets should read it, fast: each JSON line's string leaves as `key = "value"` (so its
    keyword rules still see the name; a long base64 leaf, a bytes field, as the text runs it decodes to; a short one,
    which may be a key, as it is), non-JSON lines
    as they are, each distinct line once, ids, hashes, numbers,
    timestamps and enum-like names left out (no detect-secrets plugin that is on would flag them). The verbatim
    search for the stack's real secrets reads the whole text."""
    seen: dict[str, None] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and len(value) >= 48 and BASE64.fullmatch(value):  # a bytes field: its text
            try:
                data = base64.b64decode(value, validate=True)
            except ValueError:
                data = value.encode()
            for run in PRINTABLE.findall(data):
                walk(run.decode("ascii"), key)
        elif isinstance(value, str) and not ID_LIKE.fullmatch(value):
            seen.setdefault(f'{key} = "{value}"')

    for line in text.splitlines():
        try:
            walk(json.loads(line), "value")
        except ValueError:
            seen.setdefault(line)
    return list(seen)


def ledger_entries(directory: Path) -> list[str]:
    """Each entry as JSON, its payload decoded with its topic's message type (else as text), its key as text: a
    secret inside a recorded message is then found as itself, not as base64."""
    from audit_service.ledger import read_entries
    from trading_platform.topics import lookup

    lines = []
    for entry in read_entries(directory) if directory.exists() else []:
        payload, key = entry.payload, entry.key
        entry.ClearField("payload")
        entry.ClearField("key")
        try:
            message = lookup(entry.topic.removeprefix("shadow.")).message_type.FromString(payload)
            decoded: Any = MessageToDict(message)
        except Exception:  # an unknown topic or a payload that does not decode: its bytes as text
            decoded = payload.decode("utf-8", errors="replace")
        lines.append(
            json.dumps({"entry": MessageToDict(entry), "key": key.decode("utf-8", "replace"), "payload": decoded})
        )
    return lines


def stack_secrets(trade_seconds: float = TRADE_SECONDS) -> Check:
    from tradectl.stack import Platform

    threshold = "0 secrets (known Vault values or detect-secrets findings) in logs, topic payloads and the ledger"
    with tempfile.TemporaryDirectory(prefix="security-stack-") as tmp:
        run = Platform.with_free_ports(
            Path(tmp) / "run",
            exchange_args=("--speed", "10", "--start", "2010-01-04", "--rate-limit", "6000"),
            # the policy in the signal process, not on a Ray cluster: what is scanned is the platform's own output
            service_env={"signal": {"TRADING_SIGNAL__SERVING": "local"}},
        )
        try:
            states = run.up(timeout_s=90)
            down = [name for name, state in states.items() if state != "SERVING"]
            if not states or down:
                tails = [f"{name} log:\n{run.process(name).log_tail(40)}" for name in down]
                return Check("secrets-stack", threshold, "fail", f"the stack did not start: {states}", tails)
            endpoints = run.stack.endpoints()
            time.sleep(trade_seconds)  # the exchange runs its own clock (--speed): bars, signals, orders flow
            secrets = known_secrets(endpoints)
            payloads, unread = asyncio.run(topic_payloads(endpoints.kafka_admin()))
            ledger = ledger_entries(run.run_dir / "audit-ledger")
        finally:
            run.down()
        texts: dict[str, str] = {}
        for log in sorted((run.run_dir / "logs").glob("*.log")):
            texts[f"log {log.name}"] = log.read_text(errors="replace")
        for name, lines in payloads.items():
            if lines:
                texts[f"topic {name}"] = "\n".join(lines)
        texts["audit ledger"] = "\n".join(ledger)
        findings = [
            f"{where} contains {what} verbatim"
            for where, text in texts.items()
            for what, value in secrets.items()
            if value in text and not root_token_banner(run.run_dir, where, what)
        ]
        dump = REPORT_DIR / "stack-scan"  # kept (git-ignored): what detect-secrets read, to look at a finding
        shutil.rmtree(dump, ignore_errors=True)
        dump.mkdir(parents=True)
        files = []
        for index, (where, text) in enumerate(texts.items()):
            path = dump / f"{index:03d}-{where.replace(' ', '_').replace('/', '_')}.txt"
            path.write_text("\n".join(distinct_strings(text)) + "\n")
            files.append(path)
        findings += [describe(h) for h in (scan(files, runtime=True, root=dump) if files else [])]
    records = sum(len(r) for r in payloads.values())
    orders = len(payloads.get("oms.commands.v1", [])) + len(payloads.get("risk.decisions.v1", []))
    figures = {
        "known_secret_values": len(secrets),
        "logs": sum(w.startswith("log ") for w in texts),
        "log_bytes": sum(len(t) for w, t in texts.items() if w.startswith("log ")),
        "topics_with_records": sum(bool(r) for r in payloads.values()),
        "records": records,
        "order_path_records": orders,
        "ledger_entries": len(ledger),
        "topics_not_read": len(unread),
        "trade_seconds": trade_seconds,
    }
    if not orders:
        findings.append("the stack traded no order in the window: the scan would prove little")
    return Check(
        "secrets-stack",
        threshold,
        "fail" if findings else "pass",
        f"{len(findings)} findings; {len(secrets)} Vault values searched in {figures['logs']} logs "
        f"({figures['log_bytes']:,} bytes), {records:,} records of {figures['topics_with_records']} topics "
        f"({orders} on the order path) and {len(ledger):,} ledger entries",
        findings + [f"not read: {u}" for u in unread],
        figures,
    )
