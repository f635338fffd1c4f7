"""One Ray session for the agent tests that train (RLlib training, the walk-forward with the agent): `ray.init`
costs seconds. run_walk_forward and train() reuse it. Started lazily by the first test that asks for it, and shut
down after the last agent test rather than at the session's end: an idle Ray (raylet, GCS, agents, idle workers)
would otherwise spend CPU under every test that follows, and its shutdown would fall in the last test's teardown."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
_started: list[bool] = []


def _shutdown() -> None:
    if _started:
        import ray

        ray.shutdown()
        _started.clear()


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        _started.append(True)
    yield
    _shutdown()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or HERE not in nextitem.path.parents:
        _shutdown()
