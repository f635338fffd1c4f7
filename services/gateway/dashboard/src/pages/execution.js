// Execution quality (transaction-cost analysis): slippage and implementation shortfall over time, fill, reject and
// cancel rates, latency percentiles per stage and their histogram, slippage against order size and against time.

import { list } from "../api.js";
import { barChart, scatterChart, timeChart } from "../charts.js";
import { h, num, pct, time, toMillis } from "../dom.js";
import { errorText, message, numberOr, section, table } from "../ui.js";

const STAGES = [
  ["decision → submit", "decision_to_submit"],
  ["submit → accept", "submit_to_accept"],
  ["submit → fill", "submit_to_fill"],
];

const WINDOW_COLUMNS = [
  { label: "Symbol", key: "symbol" },
  { label: "Window end", key: "window_end", format: time },
  { label: "Orders", key: "orders", class: "num" },
  { label: "Slippage bps", key: "arrival_slippage_bps", format: (v) => num(v), class: "num" },
  { label: "Shortfall bps", key: "implementation_shortfall_bps", format: (v) => num(v), class: "num" },
  { label: "Fill ratio", key: "fill_ratio", format: pct, class: "num" },
  { label: "Reject rate", key: "reject_rate", format: pct, class: "num" },
  { label: "Cancel rate", key: "cancel_rate", format: pct, class: "num" },
  { label: "Rejects by reason", key: "rejects_by_reason" },
];

// Latencies of single orders into buckets (ms): the histogram.
export function histogram(values, buckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]) {
  const counts = new Array(buckets.length + 1).fill(0);
  for (const v of values) {
    const i = buckets.findIndex((b) => v <= b);
    counts[i < 0 ? buckets.length : i] += 1;
  }
  const labels = [...buckets.map((b) => `≤${b}`), `>${buckets[buckets.length - 1]}`];
  return { labels, counts };
}

export default {
  path: "execution",
  title: "Execution quality",
  render(view) {
    const charts = h("div", { class: "grid" });
    const perOrder = h("div", { class: "grid" });
    const windows = table({ name: "execution-windows", columns: WINDOW_COLUMNS, rowKey: (w) => `${w.symbol}-${w.window_start_ns}` });
    view.append(section("Cost and rates by window", charts, windows.el), section("Per order", perOrder));
    const slippage = timeChart(charts, {
      name: "slippage",
      title: "Arrival slippage and implementation shortfall (bps)",
      series: [{ label: "slippage bps" }, { label: "shortfall bps" }],
    });
    const rates = timeChart(charts, {
      name: "rates",
      title: "Fill ratio, reject and cancel rate",
      series: [{ label: "fill ratio", digits: 3 }, { label: "reject rate", digits: 3 }, { label: "cancel rate", digits: 3 }],
    });
    let stageLabels = [];
    const latency = barChart(charts, {
      name: "latency-percentiles",
      title: "Latency p50 and p99 per stage (ms, latest windows)",
      labels: () => stageLabels,
      series: [{ label: "p50 ms" }, { label: "p99 ms", fill: "#ffb45499", stroke: "#ffb454" }],
    });
    let bucketLabels = [];
    const hist = barChart(perOrder, {
      name: "latency-histogram",
      title: "Submit → first fill latency of each order (orders per ms bucket)",
      labels: () => bucketLabels,
      series: [{ label: "orders" }],
    });
    const bySize = scatterChart(perOrder, {
      name: "slippage-size",
      title: "Slippage (bps) against order size (notional)",
      xLabel: "notional",
      series: [{ label: "slippage bps" }],
    });
    const byTime = scatterChart(perOrder, {
      name: "slippage-time",
      title: "Slippage (bps) against time",
      time: true,
      series: [{ label: "slippage bps" }],
    });
    const t = (w) => toMillis(w.window_end_ns) / 1000;
    const showWindows = (items) => {
      items.sort((a, b) => a.window_end_ns - b.window_end_ns);
      windows.set([...items].reverse());
      slippage.rows(items.map((w) => ({ x: t(w), y0: numberOr(w.arrival_slippage_bps), y1: numberOr(w.implementation_shortfall_bps) })));
      rates.rows(items.map((w) => ({ x: t(w), y0: numberOr(w.fill_ratio), y1: numberOr(w.reject_rate), y2: numberOr(w.cancel_rate) })));
      const latest = items[items.length - 1];
      stageLabels = STAGES.map(([label]) => label);
      latency.rows(
        latest
          ? STAGES.map(([, key], i) => ({ x: i, y0: numberOr(latest[`${key}_p50_ms`]), y1: numberOr(latest[`${key}_p99_ms`]) }))
          : [],
      );
    };
    let items = [];
    list("/api/v1/execution-quality", { limit: 500 }).then(
      (page) => {
        items = page.items;
        showWindows(items);
      },
      (e) => charts.append(message(errorText(e), "error")),
    );
    // Per order (execution.quality.v1): latency to the first fill and slippage; the size is the order's filled
    // notional (its filled quantity at its average fill price, from the orders read).
    let measured = [];
    const sizes = new Map();
    const showOrders = () => {
      const latencies = measured.map((o) => numberOr(o.submit_to_first_fill_ns)).filter((v) => v).map((ns) => ns / 1e6);
      const { labels, counts } = histogram(latencies);
      bucketLabels = labels;
      hist.rows(counts.map((c, i) => ({ x: i, y0: c })));
      bySize.rows(measured.map((o) => ({ x: sizes.get(o.client_order_id) ?? NaN, y0: numberOr(o.slippage_bps) })));
      byTime.rows(measured.map((o) => ({ x: toMillis(o.envelope?.ts_event_ns) / 1000, y0: numberOr(o.slippage_bps) })));
    };
    const size = (o) => Math.abs(Number(o.filled_quantity) * Number(o.average_fill_price));
    Promise.all([list("/api/v1/execution-quality/orders", { limit: 500 }), list("/api/v1/orders", { limit: 500 })]).then(
      ([quality, orders]) => {
        for (const o of orders.items) sizes.set(o.client_order_id, size(o));
        measured = quality.items;
        showOrders();
      },
      (e) => perOrder.append(message(errorText(e), "error")),
    );
    return {
      onEvent(channel, item) {
        if (channel === "execution" && item.symbol) {
          items = [...items.filter((w) => !(w.symbol === item.symbol && w.window_start_ns === item.window_start_ns)), item];
          showWindows(items);
        } else if (channel === "orders" && item.client_order_id) sizes.set(item.client_order_id, size(item));
        else if (channel === "execution_orders" && item.client_order_id) {
          measured = [...measured, item];
          showOrders();
        }
      },
    };
  },
};

