"""tradectl audit: verify the hash-chained ledger and query it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from google.protobuf import json_format
from rich.console import Console

app = typer.Typer(help="The audit ledger: verify its hash chain, query its entries.", no_args_is_help=True)
console = Console(stderr=True)
LEDGER = typer.Option(Path(".run/audit-ledger"), "--ledger", help="the ledger folder")


@app.command()
def verify(ledger: Path = LEDGER, as_json: bool = typer.Option(False, "--json")) -> None:
    """Check every hash, link, sequence number and seal; exit 1 and say where if anything was altered."""
    from audit_service.ledger import verify as verify_ledger

    result = verify_ledger(ledger)
    if as_json:
        print(json.dumps({"ok": result.ok, "entries_checked": result.entries_checked, "errors": result.errors}))
    elif result.ok:
        console.print(f"[green]ledger OK[/green]: {result.entries_checked} entries verified in {ledger}")
    else:
        console.print(f"[red]ledger FAILED verification[/red] after {result.entries_checked} entries:")
        for error in result.errors[:20]:
            console.print(f"  {error}")
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def query(
    ledger: Path = LEDGER,
    client_order_id: str = typer.Option("", help="entries of one order"),
    correlation_id: str = typer.Option("", help="entries of one decision chain"),
    symbol: str = typer.Option("", help="entries of one symbol"),
    topic: str = typer.Option("", help="entries of one topic"),
    limit: int = typer.Option(100, help="at most this many"),
) -> None:
    """Print matching ledger entries as JSON lines, payload decoded by its message type."""
    from audit_service.app import query as query_ledger
    from audit_service.ledger import read_entries
    from trading.audit.v1 import audit_pb2
    from trading.common.v1 import common_pb2
    from trading_platform.topics import TOPICS

    types = {t.type_name: t.message_type for t in TOPICS.values()}
    types[common_pb2.DeadLetter.DESCRIPTOR.full_name] = common_pb2.DeadLetter
    request = audit_pb2.QueryRequest(
        client_order_id=client_order_id, correlation_id=correlation_id, symbol=symbol, topic=topic, limit=limit
    )
    for entry in query_ledger(read_entries(ledger), request):
        line = json_format.MessageToDict(entry, preserving_proto_field_name=True)
        line.pop("payload", None)
        line["value"] = json_format.MessageToDict(
            types[entry.message_type].FromString(entry.payload), preserving_proto_field_name=True
        )
        print(json.dumps(line))
