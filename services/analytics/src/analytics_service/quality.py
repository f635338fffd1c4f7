"""Data quality per symbol and window (analytics.quality.v1): market-data's scores (marketdata.quality.v1), the
gaps between consecutive bars (marketdata.bars.v1) and the source failovers (marketdata.sources.v1, counted in the
`_all` row: a failover switches every symbol's source)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from trading.analytics.v1 import analytics_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.envelope import new_envelope

from analytics_service.rules import Observation
from analytics_service.windows import ALL, NS, Windows


def _empty(symbol: str, start: int, end: int) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "window_start": start,
        "window_end": end,
        "score_sum": 0.0,
        "scores": 0,
        "score_min": 1.0,
        "accepted": 0,
        "rejected": 0,
        "gaps": 0,
        "failovers": 0,
        "rejects_by_reason": {},
    }


class Quality:
    def __init__(self, rows: MutableMapping[str, Any], last_bars: MutableMapping[str, Any], windows: Windows) -> None:
        self.rows, self.last_bars, self.windows = rows, last_bars, windows

    def _update(self, symbol: str, ts_ns: int, change: dict[str, Any]) -> list[str]:
        keys = []
        for span in self.windows.spans(ts_ns):
            key = span.key(symbol)
            row = {**(self.rows.get(key) or _empty(symbol, span.start_ns, span.end_ns))}
            for name, value in change.items():
                if name == "score":
                    row["score_sum"] += value
                    row["scores"] += 1
                    row["score_min"] = min(row["score_min"], value)
                elif name == "rejects_by_reason":
                    reasons = dict(row["rejects_by_reason"])
                    for reason, count in value.items():
                        reasons[reason] = reasons.get(reason, 0) + count
                    row["rejects_by_reason"] = reasons
                else:
                    row[name] += value
            self.rows[key] = row
            keys.append(key)
        return keys

    def on_score(self, scored: marketdata_pb2.DataQualityScored) -> tuple[list[str], list[Observation]]:
        ts = scored.window_start or scored.envelope.ts_event
        keys = self._update(
            scored.symbol,
            ts,
            {
                "score": scored.score,
                "accepted": scored.records_accepted,
                "rejected": scored.records_rejected,
                "rejects_by_reason": dict(scored.rejects_by_reason),
            },
        )
        return keys, [Observation("data_quality_score", scored.symbol, scored.score, scored.envelope.ts_event)]

    def on_bar(self, bar: marketdata_pb2.Bar) -> list[str]:
        """A bar more than one interval after the symbol's previous one counts the missing bars as gaps."""
        ts, interval = bar.envelope.ts_event, max(1, bar.interval_seconds) * NS
        previous = self.last_bars.get(bar.symbol)
        self.last_bars[bar.symbol] = ts
        if previous is None or ts <= previous:
            return []
        missing = round((ts - previous) / interval) - 1
        return self._update(bar.symbol, ts, {"gaps": missing}) if missing > 0 else []

    def on_switch(self, switched: marketdata_pb2.DataSourceSwitched) -> list[str]:
        return self._update(ALL, switched.envelope.ts_event, {"failovers": 1})


def row_message(row: dict[str, Any]) -> analytics_pb2.DataQualityWindow:
    scores = row["scores"]
    return analytics_pb2.DataQualityWindow(
        envelope=new_envelope("analytics", ts_event=row["window_start"]),
        symbol=row["symbol"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        score_mean=row["score_sum"] / scores if scores else 0.0,
        score_min=row["score_min"] if scores else 0.0,
        records_accepted=row["accepted"],
        records_rejected=row["rejected"],
        gaps=row["gaps"],
        failovers=row["failovers"],
        rejects_by_reason=row["rejects_by_reason"],
    )
