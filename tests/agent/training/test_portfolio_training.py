"""The portfolio agent's training: bad input stops before Ray starts, tuning never sees a test day, an interrupted
member resumes from its last checkpoint, and the trained ensemble trades without look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from trading_agent.envs import index_closes
from trading_agent.evaluation.backtest import CostModel, run_backtest
from trading_agent.evaluation.walkforward import EvaluationConfig, make_windows
from trading_agent.training import TrainConfig, train
from trading_agent.training import trainer as trainer_module
from trading_agent.training.config import CONFIG_DIR
from trading_agent.training.portfolio_agent import PortfolioAgentStrategy, train_member
from trading_agent.training.trainer import load_market
from trading_agent.training.tune import apply, check_tuning_window
from trading_datasets import close_panel

SMOKE = CONFIG_DIR / "smoke_portfolio.yaml"


@pytest.fixture
def no_ray(monkeypatch):
    def refuse(config):
        raise AssertionError("Ray was started before the input was checked")

    monkeypatch.setattr(trainer_module, "ensure_ray", refuse)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"symbols": ["AAPL", "ZZZZ"]}, "'ZZZZ' is not in source 'skfolio'"),
        ({"train_start": "1970-01-01", "train_end": "1975-12-31"}, "training window train_start..train_end"),
        ({"validate_start": "2031-01-01", "validate_end": "2031-12-31"}, "validation window validate_start"),
    ],
)
def test_bad_data_stops_the_run_naming_it_before_ray_starts(no_ray, tmp_path, changes, message):
    config = TrainConfig.from_file(SMOKE).replace(checkpoint_dir=str(tmp_path), **changes)
    with pytest.raises(ValueError, match=message):
        train(config)


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match=r"unknown train config key\(s\) \['learning_rate'\]"):
        TrainConfig.from_mapping({**TrainConfig.from_file(SMOKE).to_dict(), "learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"unknown reward key\(s\) \['penalty'\]"):
        TrainConfig.from_file(SMOKE).replace(reward={"kind": "drawdown_penalised", "penalty": 2})
    with pytest.raises(ValueError, match="reward must be one of"):
        TrainConfig.from_file(SMOKE).replace(reward={"kind": "sortino"})
    with pytest.raises(ValueError, match="'hyperparameters.optimizer.beta'"):
        apply(TrainConfig.from_file(SMOKE), {"hyperparameters.optimizer.beta": 0.9})
    with pytest.raises(ValueError, match="'gama' is not a train config key"):
        apply(TrainConfig.from_file(SMOKE), {"gama": 0.9})


def test_tuning_data_ends_before_every_traded_test_day():
    dates, _ = close_panel(["AAPL"], "skfolio", "1990-01-01", "2022-12-31")
    windows = make_windows(dates, EvaluationConfig())
    check_tuning_window(windows[0].validate[1], windows[0].test[0])  # window 0's validation year precedes 1996
    with pytest.raises(ValueError, match="tuning would see test data"):
        check_tuning_window(windows[1].validate[1], windows[0].test[0])  # 1996 is window 0's test year
    changed = apply(TrainConfig.from_file(SMOKE), {"reward.kind": "log_return", "hyperparameters.lr": 0.001})
    assert changed.reward["kind"] == "log_return" and changed.hyperparameters["lr"] == 0.001


def test_an_interrupted_member_resumes_from_its_last_checkpoint_and_trades_without_look_ahead(ray_session, tmp_path):
    config = TrainConfig.from_file(SMOKE)
    market = load_market(config)
    assert market.index is not None
    train_rows, validate_rows = slice(0, market.train_end), slice(*market.validate)
    directory = tmp_path / "member"
    # the interrupted run: one iteration done and checkpointed, then the process died
    first = train(config.replace(iterations=1, checkpoint_dir=str(directory / "checkpoints")), market=market)
    record = train_member(market.closes[train_rows], market.index[train_rows], market.closes[validate_rows],
                          market.index[validate_rows], config, directory)  # fmt: skip
    assert record["resumed_from"] is not None and record["resumed_from"].endswith("iteration-00001")
    assert record["iterations"] == 2 and len(record["history"]) == 2
    assert record["history"][0] == first.history[0]
    assert record["timesteps"] == 2 * 512
    assert (directory / "policy.onnx").is_file() and not (directory / "checkpoints").exists()
    again = train_member(market.closes[train_rows], market.index[train_rows], market.closes[validate_rows],
                         market.index[validate_rows], config, directory)  # fmt: skip
    assert again == record  # a finished member is loaded, not retrained

    dates, closes = market.dates, market.closes
    index = market.index
    from trading_agent.envs import PortfolioScaler

    strategy = PortfolioAgentStrategy([directory / "policy.onnx"], PortfolioScaler.from_dict(record["scaler"]), index)
    start, end = market.validate
    cut = start + 40
    moved_closes, moved_index = closes.copy(), index.copy()
    moved_closes[cut + 1 :] *= 1.3
    moved_index[cut + 1 :] *= 0.7
    moved = PortfolioAgentStrategy([directory / "policy.onnx"], strategy.scaler, moved_index)
    a = run_backtest(dates, closes, strategy, start, end, CostModel())
    b = run_backtest(dates, moved_closes, moved, start, end, CostModel())
    decided = cut + 1 - start  # weights held over days start..cut were decided at closes up to cut
    np.testing.assert_array_equal(a.weights[:decided], b.weights[:decided])
    assert not np.array_equal(a.weights[decided:], b.weights[decided:])
    assert (a.weights >= 0).all() and (a.weights.sum(axis=1) <= 1 + 1e-9).all()
    assert np.all(index_closes(dates) == index)


def test_the_ensemble_needs_a_member():
    with pytest.raises(ValueError, match="at least one member"):
        PortfolioAgentStrategy([], None, np.ones(3))  # type: ignore[arg-type]
