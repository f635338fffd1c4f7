"""The demo trades out of sample: the bundled production policy has seen no day of the exchange's default replay,
and the exchange refuses to replay days a served policy was trained or validated on."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from paper_exchange.__main__ import parse_args
from paper_exchange.engine import Exchange, ExchangeConfig
from signal_service import BUNDLED_REGISTRY
from tradectl import stack
from trading_platform.devstack import free_port
from trading_policy import ModelRegistry
from trading_policy.periods import data_periods, in_sample_versions


def test_the_bundled_policy_was_trained_and_validated_before_the_default_replay() -> None:
    served = ModelRegistry(BUNDLED_REGISTRY).get("trend-ppo")
    periods = data_periods(served.manifest)
    first_day = str(Exchange(ExchangeConfig()).days[0])  # the first day the exchange replays by default
    default_start = inspect.signature(stack.up).parameters["start"].default.default  # `tradectl up --start`
    assert parse_args([]).start == ExchangeConfig().start_date == default_start
    assert periods.train[1] < first_day and periods.validate is not None and periods.validate[1] < first_day
    assert periods.out_of_sample(first_day) and in_sample_versions(ModelRegistry(BUNDLED_REGISTRY), first_day) == []
    assert served.manifest["replay"]["start"] == first_day  # the manifest names the replay it was bundled for
    assert served.manifest["replay"]["symbols"] == list(ExchangeConfig().symbols)


def exchange_command(registry: Path, port: int, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "paper_exchange", "--port", str(port), "--speed", "0",
        "--policy-registry", str(registry), *args,
    ]  # fmt: skip


ENV = {**os.environ, "PAPER_EXCHANGE_API_KEY_ID": "PKOOS", "PAPER_EXCHANGE_API_SECRET_KEY": "oos-test"}


def refused(registry: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the exchange expecting it to stop before it listens."""
    command = exchange_command(registry, free_port(), *args)
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120, check=False)


def serves(registry: Path, *args: str) -> str:
    """Start the exchange, wait for /healthz, stop it; returns what it wrote to stderr."""
    port = free_port()
    process = subprocess.Popen(
        exchange_command(registry, port, *args), env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the exchange exited: {process.stderr.read() if process.stderr else ''}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("the exchange did not answer /healthz")
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    return err


def test_the_exchange_refuses_to_replay_days_the_served_policy_has_seen(tmp_path: Path) -> None:
    shutil.copytree(BUNDLED_REGISTRY / "trend-ppo", tmp_path / "trend-ppo")
    registry = ModelRegistry(tmp_path)
    registry.promote("trend-ppo", "1")  # version 1: trained 2000-2015, validated 2016-2017
    result = refused(tmp_path)
    assert result.returncode == 2
    assert "trend-ppo@1 (production) has seen data up to 2017-12-29" in result.stderr
    assert "refusing to replay in sample" in result.stderr

    registry.promote("trend-ppo", "2")  # trained 1990-2007, validated 2008-2009: 2010 is out of sample
    assert "in sample" not in serves(tmp_path)

    # bytetheory's replay starts 2009-08-03, inside version 2's validation window
    result = refused(tmp_path, "--source", "bytetheory", "--start", "2009-08-03")
    assert result.returncode == 2 and "trend-ppo@2 (production) has seen data up to 2009-12-31" in result.stderr
    warned = serves(tmp_path, "--source", "bytetheory", "--start", "2009-08-03", "--allow-in-sample")
    assert "WARNING: trend-ppo@2 (production) has seen data up to 2009-12-31" in warned
