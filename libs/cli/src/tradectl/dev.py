"""tradectl dev: the embedded stack (Apache Kafka, Redis, Vault API server) as local processes."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from trading_platform.devstack import DEFAULT_RUN_DIR, DevStack, DevStackError, StackPorts

app = typer.Typer(
    help="The embedded dev stack: Apache Kafka (KRaft), Redis and Vault API (OpenBao) as processes.",
    no_args_is_help=True,
)
console = Console(stderr=True)

RunDir = typer.Option(DEFAULT_RUN_DIR, "--run-dir", help="where logs, pids, tokens and stack.json live")


@app.command()
def up(
    run_dir: Path = RunDir,
    kafka_port: int = typer.Option(StackPorts.kafka, help="Kafka listener port"),
    redis_port: int = typer.Option(StackPorts.redis, help="Redis port"),
    vault_port: int = typer.Option(StackPorts.vault, help="Vault API port"),
    as_json: bool = typer.Option(False, "--json", help="print the endpoints as JSON"),
) -> None:
    """Start the stack (idempotent: running parts are kept), seed the dev Vault, print the endpoints."""
    stack = DevStack(run_dir, StackPorts(kafka_port, redis_port, vault_port))
    try:
        endpoints = stack.up()
    except DevStackError as error:
        console.print(f"[red]dev stack failed:[/red] {error}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(endpoints.to_dict(), indent=2))
        return
    table = Table(title="embedded stack", show_header=True)
    table.add_column("part")
    table.add_column("endpoint")
    table.add_row("Kafka bootstrap", endpoints.kafka_bootstrap)
    table.add_row("Redis", endpoints.redis_url)
    table.add_row("Vault", endpoints.vault_addr)
    table.add_row("Vault root token file", endpoints.vault_token_file)
    if endpoints.kafka_client_properties:
        table.add_row("Kafka client properties (kcat -F)", endpoints.kafka_client_properties)
    table.add_row("logs", str(Path(endpoints.run_dir) / "logs"))
    Console().print(table)


@app.command()
def down(run_dir: Path = RunDir) -> None:
    """Stop every part of the stack that is running."""
    stopped = DevStack.from_run_dir(run_dir).down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command()
def status(run_dir: Path = RunDir, as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Each part's pid, endpoint and whether it answers; exit 1 if any part is down."""
    stack = DevStack.from_run_dir(run_dir)
    state = stack.status()
    healthy = all(part["answering"] for part in state.values())
    if as_json:
        print(json.dumps({"healthy": healthy, "endpoints": stack.endpoints().to_dict(), "parts": state}, indent=2))
    else:
        table = Table(title="embedded stack")
        for column in ("part", "endpoint", "pid", "answering", "log"):
            table.add_column(column)
        for name, part in state.items():
            mark = "[green]yes[/green]" if part["answering"] else "[red]no[/red]"
            table.add_row(name, str(part["endpoint"]), str(part["pid"] or "-"), mark, str(part["log"]))
        Console().print(table)
    if not healthy:
        raise typer.Exit(1)
