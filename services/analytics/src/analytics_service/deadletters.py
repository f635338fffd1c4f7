"""Dead letters per source topic and window (analytics.deadletters.v1), from every registry topic's `.dlq`, and
the dead_letters observation (the count in the current shortest window) that the dead-letter growth rule watches."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from trading.analytics.v1 import analytics_pb2
from trading.common.v1 import common_pb2
from trading_platform.envelope import new_envelope

from analytics_service.rules import Observation
from analytics_service.windows import Windows


class DeadLetters:
    def __init__(self, rows: MutableMapping[str, Any], totals: MutableMapping[str, Any], windows: Windows) -> None:
        self.rows, self.totals, self.windows = rows, totals, windows

    def on_dead_letter(self, topic: str, letter: common_pb2.DeadLetter) -> tuple[list[str], list[Observation]]:
        """`topic` is the source topic (the registry name, without `.dlq`)."""
        ts = letter.envelope.ts_event
        self.totals[topic] = int(self.totals.get(topic) or 0) + 1
        keys = []
        for span in self.windows.spans(ts):
            key = span.key(topic)
            row = {
                **(
                    self.rows.get(key)
                    or {"topic": topic, "window_start": span.start_ns, "window_end": span.end_ns, "count": 0}
                )
            }
            reasons = dict(row.get("by_reason", {}))
            reason = letter.reason_code or "unspecified"
            reasons[reason] = reasons.get(reason, 0) + 1
            row.update(count=row["count"] + 1, by_reason=reasons, total=self.totals[topic])
            self.rows[key] = row
            keys.append(key)
        return keys, [self.observation(topic, ts)]

    def observation(self, topic: str, now_ns: int) -> Observation:
        """The count of `topic`'s dead letters in the shortest window holding now_ns (0 once a window passes)."""
        row = self.rows.get(self.windows.shortest(now_ns).key(topic)) or {}
        return Observation("dead_letters", topic, float(row.get("count", 0)), now_ns)

    def topics(self) -> list[str]:
        return list(self.totals.keys())


def row_message(row: dict[str, Any]) -> analytics_pb2.DeadLetterWindow:
    return analytics_pb2.DeadLetterWindow(
        envelope=new_envelope("analytics", ts_event=row["window_start"]),
        topic=row["topic"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        count=row["count"],
        total=row["total"],
        by_reason=row.get("by_reason", {}),
    )
