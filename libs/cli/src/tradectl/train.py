"""`tradectl train`: train the RL agent on Ray RLlib, export it to ONNX and register it in the model registry."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import typer

DEFAULT_REGISTRY = ".run/models"
REGISTRY_ENV = "TRADING_SIGNAL__MODEL_REGISTRY"


def register(app: typer.Typer) -> None:
    """Add `train` to the root app."""
    app.command("train")(train)


def _default_config() -> Path:
    from trading_agent.training import CONFIG_DIR

    return CONFIG_DIR / "default.yaml"


def train(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="TrainConfig YAML (algorithm PPO|SAC, env single|portfolio, symbols, train/validate windows, costs, "
        "hyperparameters, iterations, seed, checkpoint_dir, ray_address). Default: libs/agent/configs/default.yaml; "
        "libs/agent/configs/smoke.yaml trains in seconds.",
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        help="Checkpoint directory to continue from (e.g. .run/checkpoints/default/iteration-00020): training runs "
        "on to the config's `iterations` in total.",
    ),
    registry: Path | None = typer.Option(
        None,
        "--registry",
        help=f"Model registry root. Default: ${REGISTRY_ENV} if set, else {DEFAULT_REGISTRY}.",
    ),
    name: str = typer.Option("trend-ppo", "--name", help="Model name in the registry; versions count 1, 2, ..."),
    promote: bool = typer.Option(
        False, "--promote", help="Make the new version the production one (the signal service serves it)."
    ),
    iterations: int | None = typer.Option(None, "--iterations", help="Override the config's total iterations."),
    seed: int | None = typer.Option(None, "--seed", help="Override the config's seed."),
    no_register: bool = typer.Option(False, "--no-register", help="Train, evaluate and export, but do not register."),
) -> None:
    """Train the RL agent on real daily closes with Ray RLlib, then evaluate it deterministically on the validation
    window, export it to ONNX (parity-checked against torch) and register it with its manifest.

    Checkpoints land in the config's checkpoint_dir every checkpoint_every iterations and at the end. Runs locally
    (ray.init on this machine) or on a Ray cluster when the config sets ray_address ("auto" on a head node).

    Examples:

      tradectl train                                        # default.yaml, a minute or three on 2 cores

      tradectl train -c libs/agent/configs/smoke.yaml --name smoke

      tradectl train --resume .run/checkpoints/default/iteration-00020 --iterations 40 --promote
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from trading_agent.training import TrainConfig, TrainingProgress, register_model
    from trading_agent.training import train as run_training
    from trading_datasets import DatasetError

    console = Console()
    for noisy in ("ray", "ray.rllib", "ray._common", "ray.tune"):  # RLlib's API-stack and deprecation chatter
        logging.getLogger(noisy).setLevel(logging.ERROR)
    path = config if config is not None else _default_config()
    try:
        settings = TrainConfig.from_file(path)
        overrides = {k: v for k, v in {"iterations": iterations, "seed": seed}.items() if v is not None}
        if overrides:
            settings = settings.replace(**overrides)
    except (ValueError, TypeError) as error:
        raise typer.BadParameter(str(error), param_hint="--config") from error
    if resume is not None and not resume.is_dir():
        raise typer.BadParameter(f"no checkpoint directory at {resume}", param_hint="--resume")
    root = registry or Path(os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY)
    register_it = not no_register and settings.env == "single"
    console.print(
        f"training [bold]{settings.algorithm}[/] on the {settings.env} env: {', '.join(settings.symbols)} "
        f"{settings.train_start}..{settings.train_end}, validating {settings.validate_start}..{settings.validate_end}, "
        f"{settings.iterations} iterations, seed {settings.seed} ({path})"
    )
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("return/episode {task.fields[ret]}"),
        TextColumn("steps {task.fields[steps]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("iterations", total=settings.iterations, ret="-", steps=0)

        def on_iteration(event: TrainingProgress) -> None:
            ret = "-" if math.isnan(event.episode_return_mean) else f"{event.episode_return_mean:+.4f}"
            bar.update(task, completed=event.iteration, ret=ret, steps=f"{event.timesteps:,}")
            if event.checkpoint:
                bar.console.print(f"  checkpoint {event.checkpoint}", style="dim")

        try:
            result = run_training(settings, progress=on_iteration, resume=resume)
        except (ValueError, FileNotFoundError, DatasetError) as error:
            raise typer.BadParameter(str(error)) from error
    figures = result.validation
    console.print(
        f"validation {figures['window'][0]}..{figures['window'][1]}: total return {figures['total_return']:+.2%}, "
        f"Sharpe {figures['sharpe']:+.2f}, mean reward/step {figures['mean_reward_per_step']:+.6f}"
        + (
            f" (buy and hold {figures['buy_and_hold_total_return']:+.2%})"
            if "buy_and_hold_total_return" in figures
            else ""
        )
    )
    console.print(f"trained {result.iterations} iterations, {result.timesteps:,} steps in {result.elapsed_s:.1f} s")
    console.print(f"checkpoint: {result.checkpoint}")
    console.print(f"onnx:       {result.onnx_path} (parity vs torch {result.parity_error:.1e})")
    if register_it:
        version = register_model(result, root, name, promote=promote)
        stage = " (production)" if promote else f"; promote with `tradectl models promote {name} {version.version}`"
        console.print(f"registered: {version.name}@{version.version} in {root}{stage}")
    elif settings.env != "single":
        console.print("not registered: only single-asset policies are served (the portfolio policy stays a checkpoint)")
