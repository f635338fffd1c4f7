"""The dashboard's own logic under node's test runner (services/gateway/dashboard/test): the event-stream parser on
chunks split anywhere (a CRLF across two chunks included), the reconnect backoff's bounds, money rounded from its
decimal string. Skipped without node."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "services" / "gateway" / "dashboard"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the client's unit tests need it")
def test_the_clients_unit_tests_pass() -> None:
    run = subprocess.run(["node", "--test", "test/"], cwd=DASHBOARD, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout
