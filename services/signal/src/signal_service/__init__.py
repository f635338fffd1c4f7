"""trading-signal service."""

from pathlib import Path

# A model registry shipped with the service: `trend-ppo` version 2 in production, a PPO policy trained by
# `tradectl train` (services/signal/training/trend-ppo.yaml: 1990-2007, validated 2008-2009, seed 42) with its
# manifest, out of sample for the paper exchange's 2010 replay (signal_service.bundle). `tradectl up` copies it into
# the run folder (so promotions never edit the package) and serves it.
BUNDLED_REGISTRY = Path(__file__).parent / "bundled_models"
