"""Alert delivery to an Alertmanager-compatible webhook: a real HTTP receiver (aiohttp) in the test. The body is
Alertmanager's v2 JSON, failures are retried with backoff and counted, and offering an alert never waits."""

from __future__ import annotations

import asyncio
import time

import pytest
from analytics_service.webhook import AlertmanagerWebhook, alertmanager_body
from trading.analytics.v1 import analytics_pb2

from tests.services.analytics.receiver import alertmanager

NS = 1_000_000_000
pytestmark = pytest.mark.integration


def alert(status: int = analytics_pb2.ALERT_STATUS_FIRING, ends_at: int = 0) -> analytics_pb2.Alert:
    return analytics_pb2.Alert(
        rule="slippage_high",
        rules_version="7",
        subject="AAPL",
        status=status,
        severity=analytics_pb2.ALERT_SEVERITY_WARNING,
        summary="slippage on AAPL",
        value=31.5,
        threshold=25,
        starts_at=1_796_000_040 * NS,
        ends_at=ends_at,
        labels={"metric": "arrival_slippage_bps"},
    )


def test_the_body_is_alertmanagers() -> None:
    body = alertmanager_body(alert(), "http://dash/app/alerts")
    assert body == {
        "labels": {
            "alertname": "slippage_high",
            "subject": "AAPL",
            "severity": "warning",
            "rules_version": "7",
            "service": "analytics",
            "metric": "arrival_slippage_bps",
        },
        "annotations": {"summary": "slippage on AAPL", "value": "31.5", "threshold": "25"},
        "startsAt": "2026-11-30T00:54:00Z",
        "generatorURL": "http://dash/app/alerts",
    }
    resolved = alertmanager_body(alert(analytics_pb2.ALERT_STATUS_RESOLVED, 1_796_000_100 * NS))
    assert resolved["endsAt"] == "2026-11-30T00:55:00Z" and "generatorURL" not in resolved


async def test_delivered_after_retries_with_backoff() -> None:
    async with alertmanager() as receiver:
        receiver.answers = [503, 500]
        webhook = AlertmanagerWebhook(receiver.url, backoff_s=0.05, attempts=5)
        await webhook.start()
        try:
            webhook.offer(alert())
            (body,) = await receiver.wait_for(1)
        finally:
            await webhook.stop()
    assert body[0]["labels"]["alertname"] == "slippage_high"
    assert (webhook.delivered, webhook.failed) == (1, 0)


async def test_a_receiver_that_is_down_is_counted_and_never_blocks() -> None:
    async with alertmanager() as receiver:
        down = receiver.url  # the port is free again once the receiver is gone
    webhook = AlertmanagerWebhook(down, backoff_s=0.01, attempts=3, queue_size=2)
    await webhook.start()
    try:
        started = time.monotonic()
        for _ in range(4):
            webhook.offer(alert())
        offered_in = time.monotonic() - started
        deadline = time.monotonic() + 20
        while webhook.failed + webhook.dropped < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await webhook.stop()
    assert offered_in < 0.5  # offer() only queues: the stream never waits for the receiver
    assert webhook.delivered == 0
    assert webhook.failed + webhook.dropped == 4  # each alert either tried 3 times and failed, or dropped
    assert webhook.dropped >= 1  # the queue holds 2


async def test_a_refusal_is_not_retried() -> None:
    async with alertmanager() as receiver:
        receiver.answers = [400]
        webhook = AlertmanagerWebhook(receiver.url, backoff_s=0.01, attempts=5)
        await webhook.start()
        try:
            webhook.offer(alert())
            webhook.offer(alert(analytics_pb2.ALERT_STATUS_RESOLVED, 1_796_000_100 * NS))
            (body,) = await receiver.wait_for(1)
        finally:
            await webhook.stop()
    assert "endsAt" in body[0]  # the refused FIRING was given up at once; the RESOLVED came through
    assert (webhook.delivered, webhook.failed) == (1, 1)
