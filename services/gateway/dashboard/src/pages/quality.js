// Data quality: the score per symbol and window (mean and minimum), gaps, failovers and rejected records; dead
// letters per topic.

import { list } from "../api.js";
import { timeChart } from "../charts.js";
import { h, num, pick, time, toMillis } from "../dom.js";
import { errorText, message, numberOr, section, table } from "../ui.js";

const COLUMNS = [
  { label: "Symbol", key: "symbol" },
  { label: "Window end", get: (w) => pick(w, "window_end", "window_end_ns"), format: time },
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
  { label: "Window end", get: (w) => pick(w, "window_end", "window_end_ns"), format: time },
  { label: "In window", key: "count", class: "num" },
  { label: "Total", key: "total", class: "num" },
  { label: "By reason", key: "by_reason" },
];

export default {
  path: "data-quality",
  title: "Data quality",
  render(view) {
    const charts = h("div", { class: "grid" });
    const windows = table({ name: "quality-windows", columns: COLUMNS, rowKey: (w) => `${w.symbol}-${pick(w, "window_start", "window_start_ns")}` });
    const dead = table({ name: "dead-letters", columns: DEAD_LETTER_COLUMNS, rowKey: (w) => w.topic, empty: "no dead letters" });
    view.append(section("Score by window", charts, windows.el), section("Dead letters by topic", dead.el));
    const score = timeChart(charts, {
      name: "quality-score",
      title: "Data-quality score (all symbols: mean and minimum)",
      series: [{ label: "mean", digits: 3 }, { label: "min", digits: 3 }],
    });
    let items = [];
    const show = () => {
      windows.set([...items].reverse());
      score.rows(
        items.map((w) => ({ x: toMillis(pick(w, "window_end", "window_end_ns")) / 1000, y0: numberOr(w.score_mean), y1: numberOr(w.score_min) })),
      );
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
          items = [...items, item];
          show();
        }
      },
    };
  },
};
