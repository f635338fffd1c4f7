"""`tradectl backtest`: the walk-forward study of trading_agent.evaluation, written as report.html + report.json."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `backtest` to the root app."""
    app.command("backtest")(backtest)


def backtest(
    out: Path = typer.Option(..., "--out", help="Directory for report.html and report.json, e.g. reports/default/"),
    config: Path | None = typer.Option(None, "--config", help="YAML/JSON file of EvaluationConfig keys"),
    quick: bool = typer.Option(False, "--quick", help="Few symbols, two short windows, a token agent budget"),
    no_agent: bool = typer.Option(False, "--no-agent", help="Leave the RL agent out (no per-window training)"),
    as_json: bool = typer.Option(False, "--json", help="Print the headline figures as JSON"),
) -> None:
    """Walk-forward backtest over the real daily closes: the candidates (ridge_features and the RL agent, trained on
    each train window) vs the baselines, same windows and costs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from trading_agent.evaluation.report import write_report
    from trading_agent.evaluation.walkforward import EvaluationConfig, agent_status, make_windows, run_walk_forward
    from trading_datasets import DatasetError, close_panel

    if quick and config is not None:
        raise typer.BadParameter("use either --quick or --config, not both")
    try:
        if quick:
            settings = EvaluationConfig.quick()
        elif config is not None:
            settings = EvaluationConfig.from_file(config)
        else:
            settings = EvaluationConfig()
        if no_agent:
            settings = dataclasses.replace(settings, agent=False)
        dates, _ = close_panel(list(settings.symbols), settings.source, settings.start, settings.end)
        windows = make_windows(dates, settings)
        agent_status(settings)  # reads the agent's training config: a bad one stops here, before any work
    except (ValueError, TypeError, DatasetError) as error:
        raise typer.BadParameter(f"bad backtest config {config}: {error}") from error
    total = len(windows)
    started = time.monotonic()
    columns = (
        TextColumn("[bold]walk-forward"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, transient=True, disable=as_json) as progress:
        task = progress.add_task("starting", total=total)

        def status(window, what: str) -> None:
            test = window.describe(dates)["test"]
            progress.update(task, description=f"window {window.index + 1}/{total} (test {test[0][:4]}): {what}")

        outcome = run_walk_forward(settings, progress=lambda window: progress.advance(task), status=status)
    figures = write_report(outcome, out)
    headline = {
        "out": str(out),
        "windows": len(figures["windows"]),
        "configurations_tried": figures["configurations_tried"],
        "deflated_sharpe": figures["deflated_sharpe"]["value"],
        "deflated_sharpe_by_candidate": figures["deflated_sharpe"]["by_candidate"],
        "sharpe": {name: s["out_of_sample"]["sharpe"] for name, s in figures["strategies"].items()},
        "agent": figures["agent"],
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    if as_json:
        typer.echo(json.dumps(headline, indent=2))
    else:
        for name, value in headline["sharpe"].items():
            typer.echo(f"{name:28s} out-of-sample Sharpe {value:+.2f}")
        deflated = ", ".join(f"{name} {value:.3f}" for name, value in headline["deflated_sharpe_by_candidate"].items())
        typer.echo(f"deflated Sharpe ({headline['configurations_tried']} configurations): {deflated}")
        typer.echo(f"agent: {headline['agent']}")
        typer.echo(f"report: {out / 'report.html'} ({headline['wall_time_s']:.0f} s)")
