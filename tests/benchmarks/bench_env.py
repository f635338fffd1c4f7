"""RL environment speed on one core (docs/architecture.md section 8: >= 20,000 steps/s): SingleAssetEnv and PortfolioEnv over
real skfolio closes, stepping with a fixed action and resetting at each episode's end (features are precomputed
in the constructor, so this is the per-step cost training pays), plus the constructor time."""

from __future__ import annotations

import os
import time

import numpy as np
from trading_agent.envs import PortfolioEnv, SingleAssetEnv, index_closes
from trading_datasets import close_panel

from tests.benchmarks.stats import latency_summary, write_results

STEPS = 200_000


def measure(env, steps: int = STEPS) -> dict[str, float]:
    action = np.full(env.action_space.shape, 0.5, dtype=np.float32)
    env.reset(seed=0)
    for _ in range(1000):  # warm-up
        if env.step(action)[3]:
            env.reset()
    samples = np.empty(20_000, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(len(samples)):
        started = clock()
        truncated = env.step(action)[3]
        samples[i] = clock() - started
        if truncated:
            env.reset()
    env.reset(seed=1)
    started = time.perf_counter()
    for _ in range(steps):
        if env.step(action)[3]:
            env.reset()
    elapsed = time.perf_counter() - started
    return {"steps_per_second": round(steps / elapsed), "step_latency": latency_summary(samples)}


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    symbols = ["AAPL", "JNJ", "KO", "XOM", "JPM"]
    dates, closes = close_panel(symbols, start="2000-01-01", end="2015-12-31")
    figures: dict[str, object] = {"days": len(closes), "steps": STEPS, "budget_steps_per_second": 20_000}
    started = time.perf_counter()
    single = SingleAssetEnv(closes, episode_length=252)
    figures["single_asset_construct_s"] = round(time.perf_counter() - started, 3)
    figures["single_asset"] = measure(single)
    started = time.perf_counter()
    portfolio = PortfolioEnv(closes, index=index_closes(dates), episode_length=252)
    figures["portfolio_construct_s"] = round(time.perf_counter() - started, 3)
    figures["portfolio_5_symbols"] = measure(portfolio)
    write_results("env", figures)


if __name__ == "__main__":
    main()
