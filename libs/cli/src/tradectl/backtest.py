"""`tradectl backtest`: the walk-forward study of trading_agent.evaluation, written as report.html + report.json."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `backtest` to the root app."""
    app.command("backtest")(backtest)


def backtest(
    out: Path = typer.Option(..., "--out", help="Directory for report.html and report.json, e.g. reports/default/"),
    config: Path | None = typer.Option(None, "--config", help="YAML/JSON file of EvaluationConfig keys"),
    quick: bool = typer.Option(False, "--quick", help="Few symbols, two short windows: seconds, for tests"),
    as_json: bool = typer.Option(False, "--json", help="Print the headline figures as JSON"),
) -> None:
    """Walk-forward backtest over the real daily closes: candidate vs baselines, same windows and costs."""
    from rich.progress import Progress
    from trading_agent.evaluation.report import write_report
    from trading_agent.evaluation.walkforward import EvaluationConfig, make_windows, run_walk_forward
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
        dates, _ = close_panel(list(settings.symbols), settings.source, settings.start, settings.end)
        total = len(make_windows(dates, settings))
    except (ValueError, TypeError, DatasetError) as error:
        raise typer.BadParameter(f"bad backtest config {config}: {error}") from error
    with Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task("walk-forward windows", total=total)
        outcome = run_walk_forward(settings, progress=lambda window: progress.advance(task))
    figures = write_report(outcome, out)
    headline = {
        "out": str(out),
        "windows": len(figures["windows"]),
        "configurations_tried": figures["configurations_tried"],
        "deflated_sharpe": figures["deflated_sharpe"]["value"],
        "sharpe": {name: s["out_of_sample"]["sharpe"] for name, s in figures["strategies"].items()},
        "agent": figures["agent"],
    }
    if as_json:
        typer.echo(json.dumps(headline, indent=2))
    else:
        for name, value in headline["sharpe"].items():
            typer.echo(f"{name:28s} out-of-sample Sharpe {value:+.2f}")
        typer.echo(
            f"deflated Sharpe ({headline['configurations_tried']} configurations): {headline['deflated_sharpe']:.3f}"
        )
        typer.echo(f"agent: {headline['agent']}")
        typer.echo(f"report: {out / 'report.html'}")
