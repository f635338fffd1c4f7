"""One Ray session for every test here that trains the RL agent inside the walk-forward (`ray.init` costs seconds);
run_walk_forward reuses it and leaves it up. Started lazily by the first test that asks for it."""

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
