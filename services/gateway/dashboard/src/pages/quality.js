// Data quality: the score per symbol and window (mean and minimum), gaps, failovers and rejected records; dead
// letters per topic.

import { list } from "../api.js";
import { timeChart } from "../charts.js";
import { h, num, time, toMillis } from "../dom.js";
import { errorText, message, numberOr, section, table } from "../ui.js";

const COLUMNS = [
  { label: "Symbol", key: "symbol" },
  { label: "Window end", key: "window_end", format: time },
  { label: "Score mean", key: "score_mean", format: (v) => num(v, 3), class: "num" },
  { label: "Score min", key: "score_min", format: (v) => num(v, 3), class: "num" },
  { label: "Accepted", key: "records_accepted", class: "num" },
  { label: "Rejected", key: "records_rejected", class: "num" },
  { label: "Gaps", key: "gaps", class: "num" },
  { label: "Failovers", key: "failovers", class: "num" },
  { label: "Rejects by reason", key: "rejects_by_reason" },
];

const DEAD_LETTER_COLUMNS = [
  { label: "Topic", key: "topic" },
  { label: "Window end", key: "window_end", format: time },
  { label: "In window", key: "count", class: "num" },
  { label: "Total", key: "total", class: "num" },
  { label: "By reason", key: "by_reason" },
];

export default {
  path: "data-quality",
  title: "Data quality",
  render(view) {
    const charts = h("div", { class: "grid" });
    const windows = table({ name: "quality-windows", columns: COLUMNS, rowKey: (w) => `${w.symbol}-${w.window_start_ns}` });
    const dead = table({ name: "dead-letters", columns: DEAD_LETTER_COLUMNS, rowKey: (w) => `${w.topic}-${w.window_start_ns}`, empty: "no dead letters" });
    view.append(section("Score by window", charts, windows.el), section("Dead letters by topic", dead.el));
    const score = timeChart(charts, {
      name: "quality-score",
      title: "Data-quality score (all symbols: mean and minimum)",
      series: [{ label: "mean", digits: 3 }, { label: "min", digits: 3 }],
    });
    let items = [];
    const show = () => {
      items.sort((a, b) => a.window_end_ns - b.window_end_ns);
      windows.set([...items].reverse());
      // one point per window end: the mean of the symbols' means, the lowest minimum
      const byEnd = new Map();
      for (const w of items) {
        const p = byEnd.get(w.window_end_ns) ?? { x: toMillis(w.window_end_ns) / 1000, sum: 0, n: 0, y1: Infinity };
        p.sum += Number(w.score_mean) || 0;
        p.n += 1;
        p.y1 = Math.min(p.y1, numberOr(w.score_min) ?? Infinity);
        byEnd.set(w.window_end_ns, p);
      }
      score.rows([...byEnd.values()].map((p) => ({ x: p.x, y0: p.sum / p.n, y1: Number.isFinite(p.y1) ? p.y1 : null })));
    };
    list("/api/v1/data-quality", { limit: 500 }).then(
      (page) => {
        items = page.items;
        show();
      },
      (e) => charts.append(message(errorText(e), "error")),
    );
    list("/api/v1/dead-letters", { limit: 500 }).then(
      (page) => dead.set(page.items),
      (e) => dead.el.append(message(errorText(e), "error")),
    );
    return {
      onEvent(channel, item) {
        if (channel === "quality" && item.symbol) {
          items = [...items.filter((w) => !(w.symbol === item.symbol && w.window_start_ns === item.window_start_ns)), item];
          show();
        } else if (channel === "deadletters" && item.topic) dead.upsert(item);
      },
    };
  },
};
