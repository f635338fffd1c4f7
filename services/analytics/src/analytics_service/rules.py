"""The alert rules: a versioned YAML file, validated strictly at start-up.

A rule watches one metric per subject (a symbol, a topic, a consumer group, a limit, a model) and breaches when the
value goes above (or below) its threshold. It fires once the breach has held for `for_s` seconds and resolves only
once the value is back past `clear` (hysteresis; default: the threshold), so a value hovering at the threshold does
not flap. With `orders: N` the value is the mean over the subject's last N orders. Anything unknown or inconsistent
stops the start with an error naming the rule and the key.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from trading.analytics.v1 import analytics_pb2

# metric -> what its subject is. Per-order metrics (one observation per order) may take `orders: N`.
METRICS = {
    "arrival_slippage_bps": "symbol",
    "fill_ratio": "symbol",
    "reject_rate": "symbol",
    "data_quality_score": "symbol",
    "reconciliation_mismatches": "account",
    "dead_letters": "topic",
    "limit_utilisation": "limit",
    "consumer_lag": "consumer group",
    "model_drift": "model version",
}
PER_ORDER = {"arrival_slippage_bps", "fill_ratio", "reject_rate"}
SEVERITIES = {
    "info": analytics_pb2.ALERT_SEVERITY_INFO,
    "warning": analytics_pb2.ALERT_SEVERITY_WARNING,
    "critical": analytics_pb2.ALERT_SEVERITY_CRITICAL,
}
SUMMARY_FIELDS = {"rule", "subject", "value", "threshold", "metric"}


class RulesError(SystemExit):
    """The rules file is unusable: the service must not start. The message names the rule and the key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid alert rules:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Observation:
    """One measured value of a metric for a subject, at an event time."""

    metric: str
    subject: str
    value: float
    ts_ns: int


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    metric: str
    above: float | None = None
    below: float | None = None
    clear: float | None = Field(None, description="resolves only once the value is back past this")
    orders: int | None = Field(None, ge=1, le=10_000, description="mean over the subject's last N orders")
    for_s: float = Field(0.0, ge=0, description="the breach must hold this long before the rule fires")
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = Field("{rule} on {subject}: {value:.4g} (threshold {threshold:.4g})", min_length=1)

    @field_validator("above", "below", "clear", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("for_s", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}")
        return metric

    @field_validator("summary")
    @classmethod
    def _summary_fields(cls, summary: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(summary) if name is not None}
        unknown = names - SUMMARY_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder {sorted(unknown)}; known: {sorted(SUMMARY_FIELDS)}")
        return summary

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if (self.above is None) == (self.below is None):
            raise ValueError("exactly one of `above` or `below` is required")
        if self.orders is not None and self.metric not in PER_ORDER:
            raise ValueError(f"`orders` applies only to the per-order metrics {sorted(PER_ORDER)}")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError(f"`clear` ({self.clear}) must not be above `above` ({self.above})")
            if self.below is not None and self.clear < self.below:
                raise ValueError(f"`clear` ({self.clear}) must not be below `below` ({self.below})")
        if self.metric in ("fill_ratio", "reject_rate", "data_quality_score") and not 0 <= self.threshold <= 1:
            raise ValueError(f"a {self.metric} threshold is a fraction in [0, 1], got {self.threshold}")
        return self

    @property
    def threshold(self) -> float:
        return self.above if self.above is not None else float(self.below or 0.0)

    @property
    def clear_at(self) -> float:
        return self.clear if self.clear is not None else self.threshold

    def breached(self, value: float) -> bool:
        return value > self.threshold if self.above is not None else value < self.threshold

    def cleared(self, value: float) -> bool:
        return value <= self.clear_at if self.above is not None else value >= self.clear_at


class RuleSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    version: str = Field(min_length=1)
    rules: dict[str, Rule] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("rules")
    @classmethod
    def _rule_ids(cls, rules: dict[str, Rule]) -> dict[str, Rule]:
        for rule_id in rules:
            if not rule_id.replace("_", "").isalnum() or "|" in rule_id:
                raise ValueError(f"rule id {rule_id!r}: letters, digits and _ only")
        return rules

    def for_metric(self, metric: str) -> list[tuple[str, Rule]]:
        return [(rule_id, rule) for rule_id, rule in self.rules.items() if rule.metric == metric]


def _problem(source: str, item: Any) -> str:
    location = [str(part) for part in item["loc"]]
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] == "extra_forbidden":
        message = "is not a known key"
    if len(location) >= 2 and location[0] == "rules":
        rule = location[1]
        key = ".".join(location[2:]) or "(the rule)"
        return f"{source}: rule {rule!r}: key {key!r}: {message}"
    return f"{source}: key {'.'.join(location) or '(the file)'!r}: {message}"


def parse_rules(text: str, source: str = "alert rules") -> RuleSet:
    """Validate a rules document, or raise RulesError naming each bad rule and key."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RulesError([f"{source}: not YAML: {error}"]) from None
    if not isinstance(document, dict):
        raise RulesError([f"{source}: expected a mapping with `version` and `rules`"])
    try:
        return RuleSet.model_validate(document)
    except ValidationError as error:
        raise RulesError([_problem(source, item) for item in error.errors()]) from None


def load_rules(path: Path | None = None) -> RuleSet:
    """The rules from `path`, or the packaged alert_rules.yaml."""
    if path is None:
        text = resources.files("analytics_service").joinpath("alert_rules.yaml").read_text()
        return parse_rules(text, "alert_rules.yaml")
    try:
        text = path.read_text()
    except OSError as error:
        raise RulesError([f"TRADING_ANALYTICS__RULES_FILE: cannot read {path}: {error.strerror}"]) from None
    return parse_rules(text, str(path))
