"""Delivery of alerts to an Alertmanager-compatible webhook: `POST <url>/api/v2/alerts` with Alertmanager's JSON
(labels, annotations, startsAt, endsAt, generatorURL).

`offer()` never blocks the stream: alerts wait in a bounded queue (the oldest go when it is full, counted) and one
task delivers them, retrying each with exponential backoff (capped at 30 s) for a bounded number of attempts. Every
outcome is counted (analytics_alert_deliveries_total{outcome}) and a failure is logged with its reason.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client import Counter
from trading.analytics.v1 import analytics_pb2
from trading_platform.observability import get_logger

DELIVERIES = Counter("analytics_alert_deliveries_total", "alerts sent to the Alertmanager webhook", ["outcome"])
log = get_logger("analytics.webhook")
MAX_BACKOFF_S = 30.0


def _rfc3339(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def alertmanager_body(alert: analytics_pb2.Alert, generator_url: str = "") -> dict[str, Any]:
    """One alert as Alertmanager's v2 API takes it (postableAlert)."""
    body: dict[str, Any] = {
        "labels": {
            **dict(alert.labels),
            "alertname": alert.rule,
            "subject": alert.subject,
            "severity": analytics_pb2.AlertSeverity.Name(alert.severity).removeprefix("ALERT_SEVERITY_").lower(),
            "rules_version": alert.rules_version,
            "service": "analytics",
        },
        "annotations": {
            "summary": alert.summary,
            "value": f"{alert.value:g}",
            "threshold": f"{alert.threshold:g}",
        },
        "startsAt": _rfc3339(alert.starts_at),
    }
    if alert.ends_at:
        body["endsAt"] = _rfc3339(alert.ends_at)
    if generator_url:
        body["generatorURL"] = generator_url
    return body


class AlertmanagerWebhook:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        attempts: int = 5,
        backoff_s: float = 0.5,
        queue_size: int = 1000,
        generator_url: str = "",
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.timeout_s, self.attempts, self.backoff_s = timeout_s, attempts, backoff_s
        self.generator_url = generator_url
        self.queue: collections.deque[analytics_pb2.Alert] = collections.deque(maxlen=queue_size)
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._busy = False

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout_s)
        self._task = asyncio.create_task(self._run(), name="alertmanager-webhook")

    async def stop(self, drain_s: float = 2.0) -> None:
        """Give the alerts in hand up to drain_s to be delivered, then stop."""
        deadline = asyncio.get_running_loop().time() + drain_s
        while (self.queue or self._busy) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    def offer(self, alert: analytics_pb2.Alert) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
            DELIVERIES.labels("dropped").inc()
            log.error("alert queue full: the oldest alert is dropped", endpoint=self.endpoint)
        self.queue.append(alert)
        self._ready.set()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            while self.queue:
                self._busy = True
                try:
                    await self._deliver(self.queue.popleft())
                finally:
                    self._busy = False
            self._ready.clear()

    async def _deliver(self, alert: analytics_pb2.Alert) -> bool:
        assert self._client is not None
        body = [alertmanager_body(alert, self.generator_url)]
        delay = self.backoff_s
        reason = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post(self.endpoint, json=body)
                if response.status_code < 300:
                    self.delivered += 1
                    DELIVERIES.labels("delivered").inc()
                    return True
                reason = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the receiver refuses this alert: retrying sends the same refusal
            except httpx.HTTPError as error:
                reason = f"{type(error).__name__}: {error}"
            if attempt < self.attempts:
                log.warning("alert delivery failed; retrying", endpoint=self.endpoint, reason=reason, attempt=attempt)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
        self.failed += 1
        DELIVERIES.labels("failed").inc()
        log.error("alert not delivered", endpoint=self.endpoint, rule=alert.rule, subject=alert.subject, reason=reason)
        return False
