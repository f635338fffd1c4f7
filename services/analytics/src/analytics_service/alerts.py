"""The alert rules' state machine: observations in, FIRING and RESOLVED alerts out (analytics.alerts.v1).

Per (rule, subject) the state is one of ok, pending (breached, waiting for `for_s`) and firing. An alert is emitted
once when a rule starts firing and once when it resolves; in between, further breaches emit nothing. The state lives
in a table (the faust app's `alerts` table), so a restart neither repeats a FIRING nor forgets one.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from prometheus_client import Counter
from trading.analytics.v1 import analytics_pb2
from trading_platform.envelope import new_envelope

from analytics_service.rules import METRICS, SEVERITIES, Observation, Rule, RuleSet

ALERTS = Counter("analytics_alerts_total", "alert transitions emitted", ["rule", "status"])
PRODUCER = "analytics"


def alert_key(rule_id: str, subject: str) -> str:
    return f"{rule_id}|{subject}"


class AlertEngine:
    def __init__(self, rules: RuleSet, state: MutableMapping[str, Any]) -> None:
        self.rules = rules
        self.state = state

    def observe(self, observation: Observation) -> list[analytics_pb2.Alert]:
        """Feed one observation to every rule on its metric; returns the alerts whose state changed."""
        changed = []
        for rule_id, rule in self.rules.for_metric(observation.metric):
            alert = self._step(rule_id, rule, observation)
            if alert is not None:
                changed.append(alert)
        return changed

    def _step(self, rule_id: str, rule: Rule, observation: Observation) -> analytics_pb2.Alert | None:
        key = alert_key(rule_id, observation.subject)
        state = dict(self.state.get(key) or {"phase": "ok", "since": 0, "recent": []})
        value = observation.value
        if rule.orders is not None:
            recent = [*state.get("recent", []), value][-rule.orders :]
            state["recent"] = recent
            if len(recent) < rule.orders:  # not yet N orders: nothing to judge
                self.state[key] = state
                return None
            value = sum(recent) / len(recent)
        now = observation.ts_ns
        emitted: analytics_pb2.Alert | None = None
        phase = state["phase"]
        if phase == "firing":
            if rule.cleared(value):
                emitted = self._alert(rule_id, rule, observation.subject, value, state["since"], now)
                state.update(phase="ok", since=0)
        elif rule.breached(value):
            since = state["since"] if phase == "pending" else now
            if now - since >= rule.for_s * 1e9:
                state.update(phase="firing", since=now)
                emitted = self._alert(rule_id, rule, observation.subject, value, now, 0)
            else:
                state.update(phase="pending", since=since)
        else:
            state.update(phase="ok", since=0)
        state["value"] = value
        self.state[key] = state
        if emitted is not None:
            ALERTS.labels(
                rule_id, analytics_pb2.AlertStatus.Name(emitted.status).removeprefix("ALERT_STATUS_").lower()
            ).inc()
        return emitted

    def _alert(
        self, rule_id: str, rule: Rule, subject: str, value: float, starts_at: int, ends_at: int
    ) -> analytics_pb2.Alert:
        status = analytics_pb2.ALERT_STATUS_RESOLVED if ends_at else analytics_pb2.ALERT_STATUS_FIRING
        summary = rule.summary.format(
            rule=rule_id, subject=subject, value=value, threshold=rule.threshold, metric=rule.metric
        )
        return analytics_pb2.Alert(
            envelope=new_envelope(PRODUCER, ts_event=ends_at or starts_at),
            rule=rule_id,
            rules_version=self.rules.version,
            subject=subject,
            status=status,
            severity=SEVERITIES[rule.severity],
            summary=summary,
            value=value,
            threshold=rule.threshold,
            starts_at=starts_at,
            ends_at=ends_at,
            labels={"metric": rule.metric, "subject_kind": METRICS[rule.metric], "severity": rule.severity},
        )

    def firing(self) -> list[str]:
        """The keys of every alert firing now."""
        return [key for key, state in self.state.items() if (state or {}).get("phase") == "firing"]
