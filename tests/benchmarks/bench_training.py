"""End-to-end RL training throughput against the bare env, in the same run: env steps per second inside RLlib (PPO on
VectorPortfolioEnv, 20 symbols, the study's settings), next to VectorPortfolioEnv stepped alone with random actions,
and their ratio; then where the time goes (RLlib's own timers: sampling, of which env stepping, module inference and
connectors; the learner update) for a few settings (runners, envs per runner, minibatch size).

    python -m tests.benchmarks bench_training                 # -> benchmarks/results/training.json
    python -m tests.benchmarks bench_training --iterations 3
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from trading_agent.envs import ActionConfig, VectorPortfolioEnv, index_closes
from trading_agent.evaluation.walkforward import EvaluationConfig
from trading_agent.training import TrainConfig
from trading_agent.training.portfolio_agent import PORTFOLIO_WALKFORWARD_CONFIG
from trading_datasets import close_panel

from tests.benchmarks.stats import write_results

SETTINGS = [
    # (num_env_runners, num_envs_per_env_runner, minibatch_size)
    (0, 64, 4096),
    (1, 64, 4096),
    (2, 32, 4096),
    (2, 32, 16384),
]


def bare_env(closes: np.ndarray, index: np.ndarray, num_envs: int, action: ActionConfig, steps: int = 2000) -> float:
    """Env steps/s of the vector env alone, with the action settings RLlib trains with (a weekly decision is one
    step of five days)."""
    env = VectorPortfolioEnv(closes, index=index, num_envs=num_envs, episode_length=252, action=action)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(64, num_envs, closes.shape[1] + 1)).astype(np.float32)
    started = time.perf_counter()
    for i in range(steps):
        env.step(actions[i % 64])
    return steps * num_envs / (time.perf_counter() - started)


def _timer(result: dict[str, Any], *path: str) -> float | None:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def rllib(config: TrainConfig, iterations: int) -> dict[str, Any]:
    from ray.tune.registry import register_env
    from trading_agent.envs import make_env
    from trading_agent.training.trainer import ENV_NAME, build_algorithm_config, load_market

    market = load_market(config)
    register_env(ENV_NAME, make_env)
    algo = build_algorithm_config(config, market).build_algo()
    try:
        algo.train()  # warm-up: actors started, first compile
        started = time.perf_counter()
        sampled = 0
        timers: dict[str, list[float]] = {}
        for _ in range(iterations):
            result = algo.train()
            sampled += int(result["env_runners"]["num_env_steps_sampled"])
            for name, path in {
                "sample_s": ("timers", "env_runner_sampling_timer"),
                "learner_update_s": ("timers", "learner_update_timer"),
                "env_step_s": ("env_runners", "env_step_timer"),
                "module_inference_s": ("env_runners", "rlmodule_inference_timer"),
                "env_to_module_connector_s": ("env_runners", "env_to_module_connector", "timers", "connectors"),
            }.items():
                value = _timer(result, *path)
                if value is not None:
                    timers.setdefault(name, []).append(value)
        elapsed = time.perf_counter() - started
    finally:
        algo.stop()
    return {
        "env_steps": sampled,
        "seconds": round(elapsed, 2),
        "env_steps_per_second": round(sampled / elapsed),
        "timers_mean_s": {k: round(float(np.mean(v)), 5) for k, v in timers.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2)
    args = parser.parse_args(argv or [])
    from trading_agent.training.trainer import ensure_ray

    study = EvaluationConfig()
    base = TrainConfig.from_file(PORTFOLIO_WALKFORWARD_CONFIG).replace(
        symbols=list(study.symbols), train_start="2011-01-01", train_end="2015-12-31",
        validate_start="2016-01-01", validate_end="2016-12-31",
    )  # fmt: skip
    dates, closes = close_panel(list(study.symbols), "skfolio", base.train_start, base.train_end)
    index = index_closes(dates)
    started_ray = ensure_ray(base.replace(num_env_runners=2))
    runs = []
    try:
        for runners, envs, minibatch in SETTINGS:
            config = base.replace(
                num_env_runners=runners,
                num_envs_per_env_runner=envs,
                hyperparameters={**base.hyperparameters, "minibatch_size": minibatch},
            )
            bare = bare_env(closes, index, envs, config.action_config)
            trained = rllib(config, args.iterations)
            runs.append(
                {
                    "num_env_runners": runners,
                    "num_envs_per_env_runner": envs,
                    "minibatch_size": minibatch,
                    "train_batch_size": config.hyperparameters["train_batch_size_per_learner"],
                    "bare_env_steps_per_second": round(bare),
                    **trained,
                    "ratio_rllib_to_bare_env": round(trained["env_steps_per_second"] / bare, 5),
                }
            )
            print(runs[-1], flush=True)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    figures = {"symbols": len(study.symbols), "iterations_timed": args.iterations, "action": dict(base.action)}
    write_results("training", {**figures, "runs": runs})


if __name__ == "__main__":
    main()
