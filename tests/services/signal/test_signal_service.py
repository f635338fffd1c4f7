"""The signal service serving registered policies on Ray over the real Kafka-protocol broker: every bar after warm-up
gets exactly one live signal; promoting a version swaps the live policy with no bar left unanswered and the change
shows in the signals' model version; a shadow version's signals go to signal.shadow.v1; monitoring reports appear."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from signal_service.app import SignalApp
from signal_service.config import SignalSettings
from trading.marketdata.v1 import marketdata_pb2 as M
from trading_datasets import close_panel
from trading_features import WARMUP_BARS
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, replay
from trading_platform.settings import load_settings
from trading_platform.testing.waiting import eventually
from trading_policy import ModelRegistry
from trading_policy.testing import register_linear_policy

pytestmark = pytest.mark.integration
SYMBOLS = ["AAPL", "MSFT"]
V1 = [0.5, -0.2, 0.1, 0.3, -0.4, 0.25]
V2 = [-0.3, 0.2, 0.4, 0.1, 0.0, 0.5]


async def topic(bootstrap: str, namespace: str, name: str) -> list[Any]:
    return [m.value async for m in replay(bootstrap, name, namespace=namespace)]


def bars(closes: np.ndarray, start: int, stop: int) -> list[M.Bar]:
    out = []
    for t in range(start, stop):
        for j, symbol in enumerate(SYMBOLS):
            bar = M.Bar(symbol=symbol, interval_seconds=86400, close=float(closes[t, j]), open=float(closes[t, j]))
            bar.envelope.CopyFrom(new_envelope("test"))
            out.append(bar)
    return out


@pytest.fixture
def own_ray() -> Iterator[None]:
    """The signal app starts Ray in this process, as the service does in its own. It is shut down after the test:
    left up, it outlived every test after it, and pytest's exit failed on its GCS ("Failed to connect to GCS within 60
    seconds", exit code 1 after every test had passed)."""
    import ray

    started_here = not ray.is_initialized()
    yield
    if started_here and ray.is_initialized():
        ray.shutdown()


async def test_ray_serving_hot_swap_and_shadow(
    own_ray: None, kafka_bootstrap: str, topic_namespace: str, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    register_linear_policy(registry, "trend-ppo", V1, expected_reward_per_step=0.0004)
    register_linear_policy(registry, "trend-ppo", V2, promote=None)
    settings = load_settings(
        SignalSettings,
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": topic_namespace},
        signal={"model_registry": str(registry.root), "registry_poll_s": 0.1, "monitor_every": 20},
    )
    closes = close_panel(SYMBOLS, source="skfolio", start="2010-01-01", end="2011-12-31")[1]
    app = SignalApp(settings)
    await app.start()
    assert app.slots is not None and app.slots.live.on_ray
    try:
        async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
            first = bars(closes, 0, WARMUP_BARS + 20)
            for bar in first:
                await publisher.publish("marketdata.bars.v1", bar, key=bar.symbol)

            async def answered(count: int) -> Any:
                async def check() -> bool:
                    return len(await topic(kafka_bootstrap, topic_namespace, "signal.signals.v1")) >= count

                return check

            await eventually(await answered(2 * 21), 30, "signals from v1")
            registry.promote("trend-ppo", "2")
            registry.promote("trend-ppo", "2", stage="shadow")
            # bars keep flowing while the new version loads and the swap happens; the last 20 are held back until
            # it has happened (however long Ray takes to deploy it), so bars reach both versions
            second = bars(closes, WARMUP_BARS + 20, WARMUP_BARS + 80)

            async def swapped() -> bool:
                return app.slots is not None and app.slots.live.registry_version == "2" and app.slots.shadow is not None

            for i in range(0, len(second), 2):
                if i == len(second) - 20:
                    await eventually(swapped, 120, "the swap to trend-ppo@2 with its shadow")
                for bar in second[i : i + 2]:
                    await publisher.publish("marketdata.bars.v1", bar, key=bar.symbol)
                if not await swapped():
                    await asyncio.sleep(0.1)
            expected = 2 * (21 + 60)
            await eventually(await answered(expected), 30, "a signal for every bar")

        signals = await topic(kafka_bootstrap, topic_namespace, "signal.signals.v1")
        assert len(signals) == expected  # one live signal per bar after warm-up: none dropped, none doubled
        bar_ids = [b.envelope.message_id for b in first + second][2 * (WARMUP_BARS - 1) :]
        assert sorted(s.bar_id for s in signals) == sorted(bar_ids)
        for symbol in SYMBOLS:
            versions = [s.model_version.split("+")[0] for s in signals if s.symbol == symbol]
            switch = versions.index("trend-ppo@2")
            assert set(versions[:switch]) == {"trend-ppo@1"} and set(versions[switch:]) == {"trend-ppo@2"}
        assert all(s.feature_hash and abs(s.target_weight) <= 0.2 for s in signals)

        async def shadowed() -> bool:
            return len(await topic(kafka_bootstrap, topic_namespace, "signal.shadow.v1")) > 0

        await eventually(shadowed, 10, "shadow signals")
        shadow = await topic(kafka_bootstrap, topic_namespace, "signal.shadow.v1")
        assert all(s.shadow and s.model_version.startswith("trend-ppo@2") for s in shadow)
        live_by_bar = {s.bar_id: s for s in signals}
        # the shadow saw the same inputs: same bar, same feature hash
        assert all(live_by_bar[s.bar_id].feature_hash == s.feature_hash for s in shadow)

        changes = await topic(kafka_bootstrap, topic_namespace, "signal.models.v1")
        kinds = [(c.role, c.previous_version.split("+")[0], c.model_version.split("+")[0]) for c in changes]
        assert kinds == [
            ("live", "", "trend-ppo@1"),
            ("live", "trend-ppo@1", "trend-ppo@2"),
            ("shadow", "", "trend-ppo@2"),
        ] or kinds == [
            ("live", "", "trend-ppo@1"),
            ("shadow", "", "trend-ppo@2"),
            ("live", "trend-ppo@1", "trend-ppo@2"),
        ]

        reports = await topic(kafka_bootstrap, topic_namespace, "signal.monitoring.v1")
        assert reports, "no monitoring report"
        report = reports[0]
        assert report.model_version.startswith("trend-ppo@1") and report.observations == 20
        assert len(report.drift) == 5 and report.expected_reward == pytest.approx(0.0004)
        assert sum(report.action_histogram) == pytest.approx(1.0)
    finally:
        await app.stop()


async def test_an_unregistered_model_stops_the_service_with_what_to_do(
    kafka_bootstrap: str, topic_namespace: str, tmp_path: Path
) -> None:
    settings = load_settings(
        SignalSettings,
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": topic_namespace},
        signal={"model_registry": str(tmp_path), "serving": "local"},
    )
    app = SignalApp(settings)
    with pytest.raises(Exception, match="tradectl train"):
        await app.start()
    await app.publisher.stop()
