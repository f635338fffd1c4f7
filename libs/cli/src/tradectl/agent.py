"""tradectl models (the model registry) and tradectl train (RL training on Ray).

The registry is a directory (`--registry`, else TRADING_SIGNAL__MODEL_REGISTRY, else `.run/models`, where `make up`
puts the bundled policy). The running signal service polls it: `models promote` hot-swaps the live policy within
about a second, `models promote --stage shadow` starts a shadow policy beside it (its signals go to signal.shadow.v1),
`models rollback` puts back the version production held before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from trading_policy import ModelRegistry, ModelVersion, RegistryError

DEFAULT_REGISTRY = Path(".run/models")
console = Console()
models = typer.Typer(
    help="The model registry: list versions, show a manifest, promote (hot swap in the signal service), roll back.",
    no_args_is_help=True,
)


def default_registry() -> Path:
    return Path(os.environ.get("TRADING_SIGNAL__MODEL_REGISTRY") or DEFAULT_REGISTRY)


REGISTRY = typer.Option(
    None, "--registry", help="registry root (default: $TRADING_SIGNAL__MODEL_REGISTRY or .run/models)"
)
JSON = typer.Option(False, "--json", help="machine-readable output")


def open_registry(path: Path | None) -> ModelRegistry:
    root = path or default_registry()
    if not root.is_dir():
        raise typer.BadParameter(f"no model registry at {root}; run `make up` (bundled policy) or `tradectl train`")
    return ModelRegistry(root)


def summary(model: ModelVersion, stages: dict[str, Any]) -> dict[str, Any]:
    manifest = model.manifest
    validation = manifest.get("metrics", {})
    return {
        "name": model.name,
        "version": model.version,
        "label": model.label,
        "stages": [stage for stage in ("production", "shadow") if stages.get(stage) == model.version],
        "algorithm": manifest.get("algorithm"),
        "created_at": manifest.get("created_at"),
        "train_window": [manifest.get("data", {}).get("train_start"), manifest.get("data", {}).get("train_end")],
        "seed": manifest.get("seed"),
        "metrics": validation,
        "content_hash": model.content_hash,
    }


def periods_line(model: ModelVersion) -> str:
    """The days the version was trained and validated on, the replay it was bundled for, and whether that replay is
    out of sample for it."""
    from trading_policy.periods import data_periods

    try:
        periods = data_periods(model.manifest)
    except RegistryError as error:
        return f"data periods: unknown ({error})"
    text = f"data periods: {periods.describe(replay=False)}; seen up to {periods.seen_until}"
    if periods.replay:
        start, end = periods.replay.get("start"), periods.replay.get("end")
        verdict = "out of sample" if start and periods.out_of_sample(str(start)) else "IN SAMPLE"
        text += f"; replay {periods.replay.get('source')} {start}..{end} ({verdict})"
    return text


@models.command("list")
def list_models(
    name: str | None = typer.Argument(None, help="only this model"),
    registry: Path | None = REGISTRY,
    as_json: bool = JSON,
) -> None:
    """Every registered version, with its stage (production, shadow), algorithm, window and validation figures."""
    store = open_registry(registry)
    rows = [
        summary(version, store.stages(model))
        for model in ([name] if name else store.names())
        for version in store.versions(model)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("model", "version", "stage", "algorithm", "train window", "validation")
    for row in rows:
        shown = [k for k in ("sharpe", "total_return", "buy_and_hold_total_return") if k in row["metrics"]]
        shown += [k for k, v in row["metrics"].items() if k not in shown and isinstance(v, int | float)]
        figures = ", ".join(
            f"{k.replace('_total_return', '')} {row['metrics'][k]:+.3g}"
            for k in shown
            if isinstance(row["metrics"][k], int | float)
        )
        table.add_row(
            row["name"],
            row["version"],
            ",".join(row["stages"]) or "-",
            str(row["algorithm"]),
            " .. ".join(str(x) for x in row["train_window"]),
            figures[:60],
        )
    console.print(table if rows else "no models registered; `tradectl train --help`")


@models.command("show")
def show(
    name: str = typer.Argument(..., help="model name, e.g. trend-ppo"),
    version: str | None = typer.Argument(None, help="version number (default: production)"),
    registry: Path | None = REGISTRY,
    as_json: bool = JSON,
) -> None:
    """The full manifest of a version: data window, features, scaler, hyper-parameters, seed, metrics, code."""
    store = open_registry(registry)
    try:
        model = store.get(name, version)
        store.verify(model)
    except RegistryError as error:
        raise typer.BadParameter(str(error)) from error
    if as_json:
        typer.echo(json.dumps(model.manifest, indent=2))
    else:
        console.print_json(json.dumps(model.manifest))
        console.print(f"content hash verified; files in {model.path}")
        console.print(periods_line(model))


@models.command("promote")
def promote(
    name: str = typer.Argument(..., help="model name"),
    version: str = typer.Argument(..., help="version to promote"),
    stage: str = typer.Option("production", "--stage", help="production (live) or shadow"),
    reason: str = typer.Option("", "--reason", help="why, kept in the stage history"),
    registry: Path | None = REGISTRY,
    as_json: bool = JSON,
) -> None:
    """Point a stage at a version. The signal service hot-swaps to it without dropping a signal."""
    store = open_registry(registry)
    try:
        entry = store.promote(name, version, stage, reason=reason)
    except RegistryError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(json.dumps(entry) if as_json else f"{name} {stage}: {entry['from'] or '-'} -> {entry['to']}")


@models.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="model name"),
    stage: str = typer.Option("production", "--stage", help="production or shadow"),
    registry: Path | None = REGISTRY,
    as_json: bool = JSON,
) -> None:
    """Put the stage back on the version it held before its last promotion."""
    store = open_registry(registry)
    try:
        entry = store.rollback(name, stage)
    except RegistryError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(json.dumps(entry) if as_json else f"{name} {stage}: {entry['from']} -> {entry['to']} (rolled back)")


@models.command("clear-shadow")
def clear_shadow(name: str = typer.Argument(..., help="model name"), registry: Path | None = REGISTRY) -> None:
    """Stop the shadow policy (the signal service drops it within a second)."""
    open_registry(registry).clear(name, "shadow")
    typer.echo(f"{name}: shadow cleared")


def register(app: typer.Typer) -> None:
    """Add `models` and `train` to the root app."""
    from tradectl import train

    app.add_typer(models, name="models")
    train.register(app)
