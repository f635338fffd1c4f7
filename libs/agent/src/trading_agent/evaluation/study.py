"""The portfolio agent's walk-forward study, end to end and resumable:

1. Ray Tune searches the agent's grid (`--space`, default: the three rewards x the no-trade band x daily or weekly
   decisions) on the first walk-forward window's validation year only (its data ends before every test year;
   `check_tuning_window`),
2. the best configuration is written to `<store>/tuned.yaml` (a TrainConfig) and trained per window, an ensemble of
   `--seeds` members, each member kept under `<store>/window-NN/seed-S/` (a rerun loads what is there),
3. the study (every baseline, the ridge candidate, the agent) is written as report.json / report.html, with the tuning
   trials in report.json ("tuning") and counted among the configurations tried (deflated Sharpe).

    python -m trading_agent.evaluation.study --out reports/portfolio --store .run/study --seeds 4 --iterations 16

Progress lines go to stdout (and `--progress FILE`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import yaml

from trading_agent.evaluation.walkforward import EvaluationConfig, make_windows, run_walk_forward

DEFAULT_SPACE: dict[str, list[Any]] = {
    "reward.kind": ["log_return", "differential_sharpe", "drawdown_penalised"],
    "action.band": [0.0, 0.1],
    "action.decision_days": [1, 5],
}


def run_study(
    out: Path,
    store: Path,
    seeds: int,
    iterations: int | None,
    tune_iterations: int,
    space: dict[str, list[Any]],
    windows: tuple[int, ...] | None,
    say: Any = print,
) -> dict[str, Any]:
    from trading_datasets import close_panel

    from trading_agent.envs import index_closes
    from trading_agent.evaluation.report import write_report
    from trading_agent.training.portfolio_agent import PORTFOLIO_WALKFORWARD_CONFIG
    from trading_agent.training.trainer import ensure_ray
    from trading_agent.training.tune import check_tuning_window, tune_on_validation

    store.mkdir(parents=True, exist_ok=True)
    base_study = EvaluationConfig(agent_config=str(PORTFOLIO_WALKFORWARD_CONFIG), windows=windows)
    from trading_agent.evaluation.walkforward import agent_train_config

    base = agent_train_config(base_study)
    if iterations is not None:
        base = base.replace(iterations=iterations, checkpoint_every=min(base.checkpoint_every, iterations))
    dates, closes = close_panel(list(base_study.symbols), base_study.source, base_study.start, base_study.end)
    index = index_closes(dates)
    all_windows = make_windows(dates, EvaluationConfig())
    traded = make_windows(dates, base_study)
    tuning = all_windows[0]
    check_tuning_window(tuning.validate[1], min(w.test[0] for w in traded))
    tuned_file = store / "tuned.yaml"
    tuning_file = store / "tuning.json"
    started_ray = ensure_ray(base)
    try:
        if tuning_file.is_file():
            record = json.loads(tuning_file.read_text())
            say(f"tuning: loaded {tuning_file} ({len(record['trials'])} trials)")
        else:
            say(f"tuning on window 0's validation year {dates[tuning.validate[0]]}..{dates[tuning.validate[1] - 1]}")
            started = time.monotonic()
            # a trial is one Tune actor (one CPU): it samples in itself, no env runner actors of its own
            short = base.replace(
                iterations=tune_iterations,
                checkpoint_every=tune_iterations,
                seed=base_study.seed,
                num_env_runners=0,
                num_envs_per_env_runner=base.num_envs_per_env_runner * max(1, base.num_env_runners),
            )
            record = tune_on_validation(closes, index, tuning.train, tuning.validate, short, space, store)
            record.update(
                window=tuning.describe(dates),
                iterations_per_trial=tune_iterations,
                seconds=round(time.monotonic() - started, 1),
                space=space,
            )
            tuning_file.write_text(json.dumps(record, indent=2))
            say(f"tuning done in {record['seconds']} s: best {record['best']}")
        from trading_agent.training.tune import apply

        tuned = apply(base, record["best"])
        tuned_file.write_text(yaml.safe_dump({k: v for k, v in tuned.to_dict().items() if k != "name"}))
        study = EvaluationConfig(
            name="portfolio",
            agent_config=str(tuned_file.resolve()),
            agent_seeds=seeds,
            agent_store=str(store.resolve()),
            windows=windows,
            prior_configurations=len(record["trials"]) - 1,
        )
        outcome = run_walk_forward(
            study,
            progress=lambda w: say(f"window {w.index} done"),
            status=lambda w, what: say(f"window {w.index}: {what}") if "iteration" not in what else None,
        )
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    figures = write_report(outcome, out, extra={"tuning": record})
    say(f"report written to {out}")
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=None, help="per member (default: the config's)")
    parser.add_argument("--tune-iterations", type=int, default=4)
    parser.add_argument("--space", type=str, default=None, help="JSON: dotted TrainConfig key -> list of values")
    parser.add_argument("--windows", type=str, default=None, help="comma-separated window indices (default: all)")
    parser.add_argument("--progress", type=Path, default=None)
    args = parser.parse_args(argv)
    space = json.loads(args.space) if args.space else DEFAULT_SPACE
    windows = tuple(int(w) for w in args.windows.split(",")) if args.windows else None

    def say(line: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {line}"
        print(stamped, flush=True)
        if args.progress is not None:
            with args.progress.open("a") as handle:
                handle.write(stamped + "\n")

    run_study(args.out, args.store, args.seeds, args.iterations, args.tune_iterations, space, windows, say)


if __name__ == "__main__":
    main()
