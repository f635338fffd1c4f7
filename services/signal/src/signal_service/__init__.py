"""trading-signal service."""

from pathlib import Path

# A model registry shipped with the service: `trend-ppo` version 1 in production, a PPO policy trained by
# `tradectl train` (libs/agent/configs/default.yaml, seed 42) with its manifest. `tradectl up` copies it into the run
# folder (so promotions never edit the package) and serves it.
BUNDLED_REGISTRY = Path(__file__).parent / "bundled_models"
