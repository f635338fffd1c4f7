"""trading_agent: the RL agent and its honest evaluation.

- `trading_agent.envs`: gymnasium environments (single asset, portfolio) over real daily closes, with the
  evaluation's cost model.
- `trading_agent.training`: RLlib PPO/SAC training, checkpoints, ONNX export, registration
  (libs/agent/docs/training.md).
- `trading_agent.evaluation`: metrics, the backtest engine and baselines, and the walk-forward study in which the RL
  agent (`rl_agent`) is trained on each train window and evaluated on the test window next to a learned non-RL
  candidate and the baselines (docs/evaluation.md, `tradectl backtest`).
"""
