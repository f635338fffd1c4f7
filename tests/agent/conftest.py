"""One Ray session for every agent test that trains (RLlib training, the walk-forward with the agent): `ray.init`
costs seconds. run_walk_forward and train() reuse it. Started lazily by the first test that asks for it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_session():
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    if started:
        ray.shutdown()
