"""Walk-forward evaluation: train / validate / test windows rolling through the real daily closes (skfolio sp500,
1990-2022, via trading_datasets), every candidate evaluated on each test window against the baselines on the same
days with the same costs; the test windows are stitched into one out-of-sample series per strategy.

Candidates:
- `ridge_features`: a learned (not RL) policy: ridge regression of the next day's log return on the standardised
  trading_features of each symbol, fitted on the train window, its hyper-parameters (penalty, rebalance period)
  chosen on the validate window by net Sharpe; holds symbols with a positive forecast, weights in proportion.
- `rl_agent`: the RL agent (trading_agent.training, RLlib PPO on the single-asset env by default), trained from
  scratch on each train window only with a fixed budget (libs/agent/configs/walkforward.yaml, or `agent_config`),
  seeded with `seed + window index`; the validate window only gives its reported validation figures (and its Sharpe
  counts in the deflated Sharpe's spread of configurations); traded on the test window like every other strategy.
  `agent: false` (tradectl backtest --no-agent) leaves it out and the report says so.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from trading_datasets import close_panel
from trading_features import FEATURE_NAMES, WARMUP_BARS, compute_batch

from trading_agent.evaluation import metrics
from trading_agent.evaluation.backtest import BacktestResult, CostModel, Strategy, baselines, run_backtest

CANDIDATE = "ridge_features"
AGENT = "rl_agent"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""evaluation/configs: default.yaml (the default study) and agent_quick.yaml (the agent's budget in quick mode)."""


@dataclass(frozen=True)
class EvaluationConfig:
    name: str = "default"
    symbols: tuple[str, ...] = (
        "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
        "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
    )  # fmt: skip
    source: str = "skfolio"
    start: str = "1990-01-01"
    end: str = "2022-12-31"
    train_years: int = 5
    validate_years: int = 1
    test_years: int = 1
    max_windows: int | None = None
    ridge_penalties: tuple[float, ...] = (1.0, 100.0, 10_000.0)
    rebalance_days: tuple[int, ...] = (1, 5, 21)
    commission_bps: float = 0.5
    half_spread_bps: float = 2.0
    slippage_bps: float = 3.0
    bootstrap_resamples: int = 1000
    bootstrap_mean_block: float = 20.0
    seed: int = 7
    # configurations tried by people before this run (earlier grids, discarded ideas): they count in the deflated Sharpe
    prior_configurations: int = 0
    # the RL agent: trained per window with the TrainConfig YAML `agent_config` (None: libs/agent/configs/
    # walkforward.yaml; a relative path is looked up from the working directory, then in evaluation/configs);
    # `agent_iterations` overrides its iterations
    agent: bool = True
    agent_config: str | None = None
    agent_iterations: int | None = None
    # the portfolio agent (agent_config with env: portfolio): members per window (seeds seed + 100 * window + k),
    # and a directory keeping each window's trained members, so an interrupted study resumes where it stopped
    agent_seeds: int = 1
    agent_store: str | None = None
    # evaluate only these window indices (None: all); every strategy trades the same windows
    windows: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for key in ("train_years", "validate_years", "test_years", "bootstrap_resamples"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if not self.symbols or not self.ridge_penalties or not self.rebalance_days:
            raise ValueError("symbols, ridge_penalties and rebalance_days must not be empty")
        for key in ("commission_bps", "half_spread_bps", "slippage_bps"):
            if not isinstance(getattr(self, key), int | float) or getattr(self, key) < 0:
                raise ValueError(f"{key} must be a number >= 0, got {getattr(self, key)!r}")
        if not isinstance(self.agent, bool):
            raise ValueError(f"agent must be true or false, got {self.agent!r}")
        if self.agent_iterations is not None and (
            not isinstance(self.agent_iterations, int)
            or isinstance(self.agent_iterations, bool)
            or self.agent_iterations < 1
        ):
            raise ValueError(f"agent_iterations must be a positive integer, got {self.agent_iterations!r}")
        if not isinstance(self.agent_seeds, int) or isinstance(self.agent_seeds, bool) or self.agent_seeds < 1:
            raise ValueError(f"agent_seeds must be a positive integer, got {self.agent_seeds!r}")
        if self.windows is not None and (
            not self.windows or not all(isinstance(w, int) and w >= 0 for w in self.windows)
        ):
            raise ValueError(f"windows must be a non-empty list of window indices >= 0, got {self.windows!r}")
        if self.agent_config is not None and not isinstance(self.agent_config, str):
            raise ValueError(f"agent_config must be a path (string), got {self.agent_config!r}")

    @property
    def costs(self) -> CostModel:
        return CostModel(self.commission_bps, self.half_spread_bps, self.slippage_bps)

    @property
    def grid(self) -> list[tuple[float, int]]:
        return [(penalty, days) for penalty in self.ridge_penalties for days in self.rebalance_days]

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> EvaluationConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown evaluation config key(s) {unknown}; known keys: {sorted(known)}")
        converted: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    @classmethod
    def from_file(cls, path: Path) -> EvaluationConfig:
        """A YAML (or JSON) file of EvaluationConfig keys; omitted keys keep their defaults."""
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"cannot read the evaluation config {path}: {error}") from error
        if not isinstance(values, dict):
            raise ValueError(f"the evaluation config {path} must be a mapping of keys to values")
        return cls.from_mapping(values)

    @property
    def agent_config_path(self) -> Path:
        """The agent's TrainConfig YAML (raises ValueError when a given path does not exist)."""
        if self.agent_config is None:
            from trading_agent.training.walkforward_agent import WALKFORWARD_CONFIG

            return WALKFORWARD_CONFIG
        given = Path(self.agent_config).expanduser()
        for path in (given, CONFIG_DIR / given):
            if path.is_file():
                return path.resolve()
        raise ValueError(f"agent_config {self.agent_config!r}: no such file (nor in {CONFIG_DIR})")

    @classmethod
    def quick(cls) -> EvaluationConfig:
        """A few symbols, two short windows, a small grid, the agent on a token budget (agent_quick.yaml): for tests
        and a first look (seconds, not minutes, once Ray is up)."""
        return cls(
            name="quick",
            symbols=("AAPL", "JNJ", "KO", "XOM"),
            start="2012-01-01",
            train_years=2,
            max_windows=2,
            ridge_penalties=(1.0, 1000.0),
            rebalance_days=(5,),
            bootstrap_resamples=200,
            agent_config="agent_quick.yaml",
        )


@dataclass(frozen=True)
class Window:
    index: int
    train: tuple[int, int]
    validate: tuple[int, int]
    test: tuple[int, int]

    def describe(self, dates: np.ndarray) -> dict[str, Any]:
        def span(bounds: tuple[int, int]) -> list[str]:
            return [str(dates[bounds[0]]), str(dates[bounds[1] - 1])]

        return {
            "index": self.index,
            "train": span(self.train),
            "validate": span(self.validate),
            "test": span(self.test),
        }


def make_windows(dates: np.ndarray, config: EvaluationConfig) -> list[Window]:
    """Calendar-year windows: train [y, y+T), validate [y+T, y+T+V), test [y+T+V, y+T+V+S); then y moves by S."""
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    first, last = int(years[0]), int(years[-1])

    def index_of(year: int) -> int:
        return int(np.searchsorted(years, year))

    windows: list[Window] = []
    year = first
    while year + config.train_years + config.validate_years + config.test_years - 1 <= last:
        a = index_of(year)
        b = index_of(year + config.train_years)
        c = index_of(year + config.train_years + config.validate_years)
        d = index_of(year + config.train_years + config.validate_years + config.test_years)
        windows.append(Window(len(windows), (a, b), (b, c), (c, d)))
        year += config.test_years
        if config.max_windows is not None and len(windows) >= config.max_windows:
            break
    if config.windows is not None:
        unknown = sorted(set(config.windows) - {w.index for w in windows})
        if unknown:
            raise ValueError(f"windows {unknown} do not exist: {first}-{last} has windows 0..{len(windows) - 1}")
        windows = [w for w in windows if w.index in set(config.windows)]
    if not windows:
        raise ValueError(f"{first}-{last} is too short for {config.train_years}+{config.validate_years}+"
                         f"{config.test_years} years of train/validate/test")  # fmt: skip
    return windows


@dataclass
class RidgeModel:
    """Linear forecast of the next day's log return from standardised features, shared across symbols."""

    mean: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    intercept: float
    penalty: float

    def forecast(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.coefficients + self.intercept


def fit_ridge(closes: np.ndarray, penalty: float) -> RidgeModel:
    """Fit on one window of closes only: features at t (closes up to t) against log(close[t+1] / close[t])."""
    rows, targets = [], []
    for i in range(closes.shape[1]):
        features = compute_batch(closes[:, i])[:-1]
        forward = np.diff(np.log(closes[:, i]))
        keep = ~np.isnan(features).any(axis=1)
        rows.append(features[keep])
        targets.append(forward[keep])
    x, y = np.vstack(rows), np.concatenate(targets)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    centred = y - y.mean()
    coefficients = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ centred)
    return RidgeModel(mean, scale, coefficients, float(y.mean()), penalty)


def ridge_strategy(model: RidgeModel, rebalance_days: int) -> Strategy:
    def strategy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if weights.sum() > 0 and len(history) % rebalance_days:
            return weights
        window = history[-WARMUP_BARS:]
        features = np.array([compute_batch(window[:, i])[-1] for i in range(history.shape[1])])
        positive = np.maximum(model.forecast(features), 0.0)
        total = positive.sum()
        return positive / total if total > 0 else np.zeros(history.shape[1])

    return strategy


def agent_train_config(config: EvaluationConfig) -> Any:
    """The agent's per-window TrainConfig: the YAML budget, with this study's costs (every strategy pays the same),
    long only (the backtest is), `agent_iterations` if given. The seed is set per window (`seed + window index`)."""
    from trading_agent.training.config import TrainConfig

    train_config = TrainConfig.from_file(config.agent_config_path)
    changes: dict[str, Any] = {
        "costs": {
            "commission_bps": config.commission_bps,
            "half_spread_bps": config.half_spread_bps,
            "slippage_bps": config.slippage_bps,
        },
        "long_only": True,
    }
    if config.agent_iterations is not None:
        changes["iterations"] = config.agent_iterations
        changes["checkpoint_every"] = config.agent_iterations
    return train_config.replace(**changes)


def agent_budget(config: EvaluationConfig) -> dict[str, Any]:
    """What the agent is trained with in every window (report.json "agent_budget")."""
    train_config = agent_train_config(config)
    hyperparameters = dict(train_config.hyperparameters)
    batch = int(hyperparameters.get("train_batch_size_per_learner", 4000))
    members = config.agent_seeds if train_config.env == "portfolio" else 1
    return {
        "config_file": str(config.agent_config_path),
        "algorithm": train_config.algorithm,
        "env": train_config.env,
        "iterations": train_config.iterations,
        "env_steps_per_iteration": batch,
        "members_per_window": members,
        "env_steps_per_member": train_config.iterations * batch,
        "env_steps_per_window": train_config.iterations * batch * members,
        "episode_length": train_config.episode_length,
        "reward": dict(train_config.reward) if train_config.env == "portfolio" else "position * log return - costs",
        "action": vars(train_config.action_config) if train_config.env == "portfolio" else "position in [0, 1]",
        "num_envs_per_env_runner": train_config.num_envs_per_env_runner,
        "num_env_runners": train_config.num_env_runners,
        "hyperparameters": hyperparameters,
        "seeds": f"{config.seed} + 100 * window index + member"
        if members > 1 or train_config.env == "portfolio"
        else f"{config.seed} + window index",
        "long_only": True,
        "sleeve_per_symbol": "1/N" if train_config.env == "single" else "none: the policy sets all N weights and cash",
    }


def agent_status(config: EvaluationConfig | None = None) -> str:
    """One sentence on whether and how the RL agent was evaluated (report.json "agent", the HTML note box)."""
    config = config if config is not None else EvaluationConfig()
    if importlib.util.find_spec("trading_agent.training") is None:
        return "not evaluated: trading_agent has no training API (trading_agent.training); no RL figure is reported"
    if not config.agent:
        return "not evaluated in this run (agent: false / tradectl backtest --no-agent); no RL figure is reported"
    budget = agent_budget(config)
    hidden = budget["hyperparameters"].get("model", {}).get("fcnet_hiddens", "default")
    if budget["env"] == "portfolio":
        action = budget["action"]
        return (
            f"evaluated as {AGENT}: RLlib {budget['algorithm']} on the vectorised portfolio env (target weights of "
            f"{len(config.symbols)} symbols and cash; reward {budget['reward'].get('kind')}; a decision every "
            f"{action['decision_days']} day(s), no trade within {action['band']} (L1) of the drifted weights, logit "
            f"scale {action['scale']}), network {hidden}, an "
            f"ensemble of {budget['members_per_window']} seed(s) per window trained from scratch on the train "
            f"window's closes and index only, {budget['iterations']} iteration(s) x "
            f"{budget['env_steps_per_iteration']:,} env steps x {budget['members_per_window']} = "
            f"{budget['env_steps_per_window']:,} steps per window; the validate window only gives its reported "
            f"validation figures; traded on each test window with the same costs as every strategy"
        )
    return (
        f"evaluated as {AGENT}: RLlib {budget['algorithm']} on the single-asset env, network {hidden}, trained from "
        f"scratch in every window on the train window's closes only, {budget['iterations']} iteration(s) x "
        f"{budget['env_steps_per_iteration']:,} env steps = {budget['env_steps_per_window']:,} steps per window "
        f"(seed {config.seed} + window index); the validate window only gives its reported validation figures; "
        f"traded long only on each test window (a 1/N sleeve per symbol) with the same costs as every strategy"
    )


def train_agent_for_window(
    closes: np.ndarray,
    window: Window,
    train_config: Any,
    seed: int,
    progress: Callable[[Any], None] | None = None,
) -> Any:
    """Train the RL agent on `closes[window.train]` and validate it on `closes[window.validate]`: copies of those
    rows are all training sees (never a test-window close). Returns the AgentStrategy (`.info`: validation,
    iterations, timesteps, seed)."""
    from trading_agent.training import walkforward_agent

    train_closes = np.array(closes[window.train[0] : window.train[1]], copy=True)
    validate_closes = np.array(closes[window.validate[0] : window.validate[1]], copy=True)
    return walkforward_agent.agent_strategy_for_window(
        train_closes, validate_closes, train_config.replace(seed=seed), progress=progress
    )


@dataclass
class WalkForwardResult:
    config: EvaluationConfig
    dates: np.ndarray
    windows: list[Window]
    results: dict[str, list[BacktestResult]] = field(default_factory=dict)
    chosen: list[dict[str, Any]] = field(default_factory=list)
    trial_sharpes: list[list[float]] = field(default_factory=list)  # per window: per-period validate Sharpe per config
    agent_windows: list[dict[str, Any]] = field(default_factory=list)  # per window: the agent's training and validation
    timings: dict[str, Any] = field(default_factory=dict)  # wall-clock seconds (the only figures a rerun changes)
    index: np.ndarray | None = None  # the market index on `dates` (the portfolio agent's)

    @property
    def candidates(self) -> list[str]:
        return [name for name in (CANDIDATE, AGENT) if name in self.results]

    def stitched(self, strategy: str) -> BacktestResult:
        parts = self.results[strategy]
        return BacktestResult(
            np.concatenate([p.dates for p in parts]),
            np.concatenate([p.returns for p in parts]),
            np.vstack([p.weights for p in parts]),
            np.concatenate([p.turnover for p in parts]),
            np.concatenate([p.costs for p in parts]),
        )


def run_walk_forward(
    config: EvaluationConfig,
    progress: Callable[[Window], None] | None = None,
    status: Callable[[Window, str], None] | None = None,
) -> WalkForwardResult:
    """Every window: fit and choose the ridge candidate, train the RL agent (config.agent), backtest every strategy
    on the test window. `progress(window)` after each window; `status(window, what)` while it runs ("fitting ...",
    "training rl_agent ...", "backtesting ..."). With the agent, Ray is started once (2 CPUs) unless it is up, and
    shut down at the end only if this call started it."""
    dates, closes = close_panel(list(config.symbols), config.source, config.start, config.end)
    windows = make_windows(dates, config)
    outcome = WalkForwardResult(config, dates, windows)
    train_config = agent_train_config(config) if config.agent else None
    if train_config is not None and train_config.env == "portfolio":
        from trading_agent.envs import index_closes

        outcome.index = index_closes(dates)
    started = time.monotonic()
    started_ray = False
    if train_config is not None:
        from trading_agent.training.trainer import ensure_ray

        started_ray = ensure_ray(train_config)
    try:
        for window in windows:
            _run_window(outcome, closes, window, train_config, status)
            if progress is not None:
                progress(window)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    outcome.timings["total_s"] = round(time.monotonic() - started, 1)
    return outcome


def _run_window(
    outcome: WalkForwardResult,
    closes: np.ndarray,
    window: Window,
    train_config: Any,
    status: Callable[[Window, str], None] | None,
) -> None:
    config, dates, costs = outcome.config, outcome.dates, outcome.config.costs

    def say(what: str) -> None:
        if status is not None:
            status(window, what)

    say(f"fitting {CANDIDATE} ({len(config.grid)} configurations)")
    train_closes = closes[window.train[0] : window.train[1]]
    best: tuple[float, float, int] | None = None
    tried = []
    outcome.trial_sharpes.append([])
    for penalty, days in config.grid:
        model = fit_ridge(train_closes, penalty)
        validation = run_backtest(dates, closes, ridge_strategy(model, days), *window.validate, costs)
        score = metrics.sharpe(validation.returns)
        tried.append({"penalty": penalty, "rebalance_days": days, "validate_sharpe": score})
        outcome.trial_sharpes[-1].append(metrics.sharpe_per_period(validation.returns))
        if best is None or score > best[0]:
            best = (score, penalty, days)
    assert best is not None
    _, penalty, days = best
    model = fit_ridge(train_closes, penalty)
    outcome.chosen.append(
        {
            "window": window.index,
            "penalty": penalty,
            "rebalance_days": days,
            "coefficients": dict(zip(FEATURE_NAMES, model.coefficients.round(8).tolist(), strict=True)),
            "grid": tried,
        }
    )
    strategies: dict[str, Strategy] = {CANDIDATE: ridge_strategy(model, days)}
    if train_config is not None:
        strategies[AGENT] = _train_agent(outcome, closes, window, train_config, say)
    strategies.update(baselines())
    say("backtesting the test window")
    for name, strategy in strategies.items():
        outcome.results.setdefault(name, []).append(run_backtest(dates, closes, strategy, *window.test, costs))


def _train_agent(
    outcome: WalkForwardResult, closes: np.ndarray, window: Window, train_config: Any, say: Callable[[str], None]
) -> Strategy:
    config = outcome.config
    seed = config.seed + window.index
    label = f"training {AGENT} ({train_config.algorithm}, seed {seed})"
    say(f"{label}: iteration 0/{train_config.iterations}")

    def on_iteration(event: Any) -> None:
        say(f"{label}: iteration {event.iteration}/{event.iterations}, {event.timesteps:,} steps")

    started = time.monotonic()
    if train_config.env == "portfolio":
        agent = _train_portfolio_agent(outcome, closes, window, train_config, say)
        seed = agent.info["seed"]
    else:
        agent = train_agent_for_window(closes, window, train_config, seed, on_iteration)
    outcome.timings.setdefault("agent_training_s", []).append(round(time.monotonic() - started, 1))
    say(f"validating {AGENT}")
    # the validate window under the backtest's own accounting (portfolio of 1/N sleeves, same costs): its Sharpe is
    # one more configuration in the deflated Sharpe's spread; the env's figures come with the training
    validation = run_backtest(outcome.dates, closes, agent, *window.validate, config.costs)
    outcome.trial_sharpes[-1].append(metrics.sharpe_per_period(validation.returns))
    info = agent.info
    outcome.agent_windows.append(
        {
            "window": window.index,
            "seed": seed,
            "algorithm": info["algorithm"],
            "iterations": info["iterations"],
            "timesteps": info["timesteps"],
            "validate_backtest": metrics.summary(validation.returns, validation.turnover, validation.costs),
            "validate_env": info["validation"],
            **({"members": info["members"], "train_seconds": info["train_seconds"]} if "members" in info else {}),
        }
    )
    return agent


def _train_portfolio_agent(
    outcome: WalkForwardResult, closes: np.ndarray, window: Window, train_config: Any, say: Callable[[str], None]
) -> Any:
    """The portfolio agent's ensemble for one window: members trained on window.train only (portfolio_agent hands
    training copies of those rows), seeds seed + 100 * window index + member."""
    from trading_agent.training import portfolio_agent

    config = outcome.config
    assert outcome.index is not None
    seeds = [config.seed + 100 * window.index + k for k in range(config.agent_seeds)]
    store = Path(config.agent_store) / f"window-{window.index:02d}" if config.agent_store else None

    def on_iteration(seed: int, event: Any) -> None:
        say(f"training {AGENT} (PPO portfolio, seed {seed}): iteration {event.iteration}/{event.iterations}, "
            f"{event.timesteps:,} steps")  # fmt: skip

    return portfolio_agent.portfolio_strategy_for_window(
        closes, outcome.index, window.train, window.validate, train_config, seeds, store, on_iteration
    )


def report_figures(outcome: WalkForwardResult) -> dict[str, Any]:
    """Every figure of the study, for report.json (and the HTML built from it)."""
    config = outcome.config
    strategies: dict[str, Any] = {}
    for name in outcome.results:
        stitched = outcome.stitched(name)
        strategies[name] = {
            "out_of_sample": metrics.summary(stitched.returns, stitched.turnover, stitched.costs),
            "windows": [metrics.summary(p.returns, p.turnover, p.costs) for p in outcome.results[name]],
        }

    def differences(candidate: str) -> dict[str, Any]:
        returns = outcome.stitched(candidate).returns
        return {
            name: metrics.as_dict(
                metrics.sharpe_difference_interval(
                    returns,
                    outcome.stitched(name).returns,
                    resamples=config.bootstrap_resamples,
                    mean_block=config.bootstrap_mean_block,
                    seed=config.seed,
                )
            )
            for name in outcome.results
            if name != candidate
        }

    agent = AGENT in outcome.results
    per_window = len(config.grid) + (1 if agent else 0)
    trials = per_window + config.prior_configurations
    # the spread of Sharpe between the configurations tried on the same data (averaged over windows), not between
    # market regimes: that is the dispersion the luck of picking the best configuration comes from
    variance = float(np.mean([np.var(s, ddof=1) for s in outcome.trial_sharpes])) if per_window > 1 else None
    deflated = {
        name: metrics.deflated_sharpe_ratio(outcome.stitched(name).returns, trials, variance)
        for name in outcome.candidates
    }
    models = {CANDIDATE: "ridge-features-1", "signal_baseline_policy": _baseline_version()}
    extra: dict[str, Any] = {}
    if agent:
        budget = agent_budget(config)
        models[AGENT] = (
            f"{budget['algorithm']} trained per window ({budget['env_steps_per_window']:,} steps, seed "
            f"{config.seed} + window), exported to ONNX"
        )
        extra = {
            "agent_budget": budget,
            "agent_windows": outcome.agent_windows,
            "sharpe_difference_vs_rl_agent": differences(AGENT),
        }
    return {
        "name": config.name,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.__dict__.items()},
        "seeds": {"bootstrap": config.seed, **({AGENT: [a["seed"] for a in outcome.agent_windows]} if agent else {})},
        "generated_from": {
            "data": f"{config.source} adjusted closes via trading_datasets",
            "first_day": str(outcome.dates[0]),
            "last_day": str(outcome.dates[-1]),
            "models": models,
        },
        "cost_model_bps": {
            "commission": config.commission_bps,
            "half_spread": config.half_spread_bps,
            "slippage": config.slippage_bps,
        },
        "windows": [w.describe(outcome.dates) for w in outcome.windows],
        "candidate": CANDIDATE,
        "candidates": outcome.candidates,
        "candidate_choices": outcome.chosen,
        "configurations_tried": trials,
        "deflated_sharpe": {
            "value": deflated[CANDIDATE],
            "by_candidate": deflated,
            "trials": trials,
            "trial_sharpe_variance_per_period": variance,
        },
        "agent": agent_status(config),
        "strategies": strategies,
        "sharpe_difference_vs_candidate": differences(CANDIDATE),
        **extra,
        "timings_s": outcome.timings,
    }


def _baseline_version() -> str:
    from trading_policy import BaselinePolicy

    return BaselinePolicy().model_version
