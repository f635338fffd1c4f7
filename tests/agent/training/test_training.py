"""Training end to end on real data with real Ray RLlib: smoke PPO run, checkpoint, resume, validation, ONNX export
with parity against torch, registration and serving through OnnxPolicy; SAC and the portfolio env trained too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from trading_agent.training import CONFIG_DIR, TrainConfig, evaluate, register_model, train
from trading_agent.training.export import PARITY_ATOL, policy_from_checkpoint, sample_observations
from trading_features import ASSET_FEATURES, FEATURE_NAMES, FEATURE_VERSION, MARKET_FEATURES, compute_batch


def smoke(tmp_path: Path, file: str = "smoke.yaml", **changes) -> TrainConfig:
    return TrainConfig.from_file(CONFIG_DIR / file).replace(checkpoint_dir=str(tmp_path / "checkpoints"), **changes)


def onnx_actions(path: Path, observations: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["obs"]
    assert [o.name for o in session.get_outputs()] == ["action"]
    return session.run(["action"], {"obs": observations})[0]


def test_config_files_load_and_reject_mistakes(tmp_path):
    default = TrainConfig.from_file(CONFIG_DIR / "default.yaml")
    assert default.algorithm == "PPO" and default.env == "single" and default.num_env_runners == 0
    assert TrainConfig.from_file(CONFIG_DIR / "smoke.yaml").iterations <= 3
    assert TrainConfig.from_file(CONFIG_DIR / "smoke_sac.yaml").algorithm == "SAC"
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm: PPO\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match="unknown train config key"):
        TrainConfig.from_file(bad)
    with pytest.raises(ValueError, match="algorithm"):
        TrainConfig(algorithm="DQN")
    with pytest.raises(ValueError, match="validate_start"):
        TrainConfig(train_end="2018-01-01", validate_start="2017-01-01")
    with pytest.raises(ValueError, match="cost"):
        TrainConfig(costs={"commission_bps": 1.0, "fees": 2.0})


def test_ppo_smoke_trains_resumes_exports_and_registers(ray_session, tmp_path):
    config = smoke(tmp_path)
    events = []
    first = train(config, progress=events.append)
    assert first.iterations == 2 and [e.iteration for e in events] == [1, 2]
    assert first.checkpoint.name == "iteration-00002" and first.checkpoint.is_dir()
    assert (first.checkpoint.parent / "iteration-00001").is_dir()  # checkpoint_every: 1
    assert first.timesteps >= 2 * 1000

    # resume: the checkpoint's iteration counter, history and weights carry on
    events.clear()
    second = train(config.replace(iterations=3), progress=events.append, resume=first.checkpoint)
    assert [e.iteration for e in events] == [3]
    assert second.iterations == 3 and len(second.history) == 3
    assert second.history[:2] == first.history
    assert second.timesteps > first.timesteps

    # ONNX: the exported graph against the checkpoint's torch module, independently of the exporter's own check
    assert second.onnx_path.is_file() and second.parity_error <= PARITY_ATOL
    policy = policy_from_checkpoint(second.checkpoint, "PPO", np.array([-1.0]), np.array([1.0]))
    observations = sample_observations(policy, 100, seed=123)
    expected = policy.act(observations)
    actual = onnx_actions(second.onnx_path, observations)
    assert actual.shape == (100, 1)
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)
    assert onnx_actions(second.onnx_path, observations[:1]).shape == (1, 1)  # dynamic batch axis
    assert np.all(actual >= -1.0) and np.all(actual <= 1.0)

    # the validation is deterministic: the same checkpoint gives the same figures
    again = evaluate(policy, config, second.market)
    assert again["mean_reward_per_step"] == pytest.approx(second.validation["mean_reward_per_step"], abs=1e-9)
    for key in ("total_return", "sharpe", "mean_reward_per_step", "steps", "per_symbol"):
        assert key in second.validation

    # registry: manifest, promotion, and serving through OnnxPolicy gives the policy's action
    from trading_policy.onnx_policy import OnnxPolicy
    from trading_policy.registry import ModelRegistry

    registry = tmp_path / "models"
    version = register_model(second, registry, "smoke-ppo", promote=True)
    assert version.version == "1"
    manifest = ModelRegistry(registry).get("smoke-ppo").manifest
    assert manifest["algorithm"] == "PPO" and manifest["env"] == "single" and manifest["seed"] == config.seed
    assert manifest["feature_names"] == list(FEATURE_NAMES) and manifest["feature_version"] == FEATURE_VERSION
    assert manifest["observation"]["layout"] == [*FEATURE_NAMES, "position"]
    assert manifest["observation"]["clip"] == 5.0
    assert manifest["observation"]["scaler"]["mean"] == second.scaler.to_dict()["mean"]
    assert manifest["action"] == {"low": -1.0, "high": 1.0, "long_only": False}
    assert manifest["data"]["symbols"] == list(config.symbols) and manifest["data"]["train_end"] == config.train_end
    assert manifest["expected_reward_per_step"] == second.validation["mean_reward_per_step"]
    assert manifest["metrics"]["sharpe"] == second.validation["sharpe"]
    assert manifest["code_version"] and manifest["hyperparameters"]["train_batch_size_per_learner"] == 1000
    assert json.loads((version.path / "training.json").read_text())["config"]["iterations"] == 3

    served = OnnxPolicy(version, max_weight=1.0)
    features = compute_batch(second.market.closes[:, 0])[-1]
    obs = np.append(second.scaler.transform(features), 0.25).astype(np.float32)
    assert served.predict(features, position=0.25) == pytest.approx(float(policy.act(obs[None])[0, 0]), abs=1e-5)


def test_portfolio_env_trains_and_is_not_registered(ray_session, tmp_path):
    config = smoke(tmp_path, env="portfolio", iterations=1, symbols=["AAPL", "KO", "XOM"])
    result = train(config)
    assert result.iterations == 1 and result.checkpoint.is_dir()
    assert result.validation["steps"] == 252 and "total_return" in result.validation
    assert result.parity_error <= PARITY_ATOL
    width = 3 * len(ASSET_FEATURES) + len(MARKET_FEATURES) + 4  # features of 3 symbols, the index's, 4 weights
    assert onnx_actions(result.onnx_path, np.zeros((2, width), dtype=np.float32)).shape == (2, 4)
    with pytest.raises(ValueError, match="single-asset"):
        register_model(result, tmp_path / "models", "portfolio")


def test_sac_smoke_trains_and_exports_squashed_mean(ray_session, tmp_path):
    config = smoke(tmp_path, "smoke_sac.yaml")
    started = time.monotonic()
    result = train(config)
    assert result.iterations == 2 and result.parity_error <= PARITY_ATOL
    policy = policy_from_checkpoint(result.checkpoint, "SAC", np.array([0.0]), np.array([1.0]))
    observations = sample_observations(policy, 100, seed=5)
    actual = onnx_actions(result.onnx_path, observations)
    np.testing.assert_allclose(actual, policy.act(observations), atol=1e-5, rtol=0)
    assert np.all(actual >= 0.0) and np.all(actual <= 1.0)  # long only: tanh rescaled to [0, 1]
    print(f"SAC smoke: {time.monotonic() - started:.1f} s")


def test_walk_forward_plug_in_trains_on_the_window_and_backtests(ray_session):
    from trading_agent.evaluation.backtest import CostModel, run_backtest
    from trading_agent.training.walkforward_agent import agent_strategy_for_window, walkforward_config
    from trading_datasets import close_panel

    dates, closes = close_panel(["AAPL", "KO", "XOM"], start="2009-01-01", end="2012-12-31")
    train_end, validate_end = 600, 850
    config = walkforward_config().replace(iterations=1, checkpoint_every=1)
    strategy = agent_strategy_for_window(closes[:train_end], closes[train_end:validate_end], config)
    assert strategy.info["iterations"] == 1 and strategy.info["validation"]["steps"] == 3 * 250
    result = run_backtest(dates, closes, strategy, validate_end, len(closes), CostModel())
    assert len(result.returns) == len(closes) - validate_end
    assert np.all(result.weights >= 0) and np.all(result.weights.sum(axis=1) <= 1.0 + 1e-9)
    assert np.all(result.weights <= 1 / 3 + 1e-9)  # one sleeve of 1/N per symbol


def test_cli_help_and_config_errors(tmp_path):
    import typer
    from tradectl.train import register
    from typer.testing import CliRunner

    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """tradectl"""

    runner = CliRunner()
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    for option in ("--config", "--resume", "--registry", "--name", "--promote", "TRADING_SIGNAL__MODEL_REGISTRY"):
        assert option in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm: A2C\n")
    result = runner.invoke(app, ["train", "--config", str(bad)])
    assert result.exit_code == 2 and "algorithm" in result.output
