"""The analytics service as `tradectl up` runs it: its own process with the environment tradectl gives it, on the
dev stack's secured broker (SASL/SCRAM as the `analytics` principal, password from Vault through its AppRole, ACLs
from the registry), healthy over gRPC health; a reconciliation mismatch published by order-management comes out
on analytics.alerts.v1 and reaches a real webhook receiver."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from tradectl.stack import SERVICES, Platform
from trading.analytics.v1 import analytics_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.messaging.producer import Publisher

from tests.services.analytics.helpers import envelope
from tests.services.analytics.receiver import alertmanager

pytestmark = pytest.mark.integration


async def test_the_service_runs_on_the_secured_dev_stack(tmp_path: Path) -> None:
    spec = next(s for s in SERVICES if s.name == "analytics")
    async with alertmanager() as receiver:
        platform = Platform.with_free_ports(
            tmp_path / "run",
            services=(spec,),
            service_env={"analytics": {"TRADING_ANALYTICS__ALERTMANAGER_URL": receiver.url}},
        )
        try:
            endpoints = await asyncio.to_thread(platform.stack.up)
            state = await asyncio.to_thread(platform.start_service, "analytics", endpoints, 120.0)
            log = platform.process("analytics").log_file
            assert state == "SERVING", log.read_text()[-3000:]
            async with Publisher(endpoints.kafka_principal("order-management"), "order-management") as oms:
                mismatch = oms_pb2.ReconciliationCompleted(
                    envelope=envelope(time.time_ns()), matched=False, mismatches=["AAPL: book 3, broker 0"]
                )
                await oms.publish("oms.reconciliation.v1", mismatch, key="_account")
            reader = AIOKafkaConsumer(
                "analytics.alerts.v1",
                **endpoints.kafka_principal("tradectl").client_options(),
                auto_offset_reset="earliest",
            )
            await reader.start()
            try:
                alerts: list[analytics_pb2.Alert] = []
                deadline = time.monotonic() + 90
                while not any(a.rule == "reconciliation_mismatch" for a in alerts):
                    assert time.monotonic() < deadline, log.read_text()[-3000:]
                    for records in (await reader.getmany(timeout_ms=500)).values():
                        alerts += [analytics_pb2.Alert.FromString(r.value) for r in records]
            finally:
                await reader.stop()
            fired = next(a for a in alerts if a.rule == "reconciliation_mismatch")
            assert (fired.status, fired.subject) == (analytics_pb2.ALERT_STATUS_FIRING, "_account")
            assert fired.envelope.producer == "analytics"
            (body,) = (await receiver.wait_for(1, timeout_s=60))[:1]
            assert body[0]["labels"]["alertname"] == "reconciliation_mismatch"
        finally:
            await asyncio.to_thread(platform.down)
