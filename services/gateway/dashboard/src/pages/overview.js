// Overview: the account, the equity curve, daily P&L, positions and exposure, the trading state, the latest fills
// and, for a risk officer only, the kill switch (a viewer's page never has it in the DOM).

import { call, hasRole, list } from "../api.js";
import { barChart, timeChart } from "../charts.js";
import { h, money, pick, replace, time, toMillis } from "../dom.js";
import { errorText, message, numberOr, section, showError, stat, stateBadge, table, throttle } from "../ui.js";
import { EQUITY } from "../routes.js";
import { killSwitch } from "./killswitch.js";

const POSITION_COLUMNS = [
  { label: "Symbol", key: "symbol" },
  { label: "Quantity", key: "quantity", class: "num" },
  { label: "Avg entry", key: "average_entry_price", format: money, class: "num" },
  { label: "Price", key: "market_price", format: money, class: "num" },
  { label: "Unrealized", key: "unrealized_pnl", format: money, class: "num" },
  { label: "Realized", key: "realized_pnl", format: money, class: "num" },
];

export const FILL_COLUMNS = [
  { label: "Time", get: (f) => pick(f, "ts", "filled_at", "ts_event", "timestamp"), format: time },
  { label: "Symbol", key: "symbol" },
  { label: "Side", key: "side" },
  { label: "Quantity", get: (f) => pick(f, "quantity", "last_quantity", "qty"), class: "num" },
  { label: "Price", get: (f) => pick(f, "price", "last_price"), format: money, class: "num" },
  { label: "Order", key: "client_order_id" },
];

export function fillKey(fill) {
  return String(pick(fill, "fill_id", "id") ?? `${fill.client_order_id}-${pick(fill, "ts_ns", "ts")}`);
}

function exposure(positions) {
  return positions
    .map((p) => ({ symbol: p.symbol, value: Math.abs(Number(p.quantity) * Number(p.market_price)) }))
    .filter((p) => Number.isFinite(p.value));
}

export default {
  path: "overview",
  title: "Overview",
  render(view, app) {
    // The first chart first: its data is asked for before anything is built (main.js may have asked already), and
    // only the account and the equity chart are built before it is drawn. The other charts, the tables and the
    // other reads follow its answer, so the gateway serves it alone and the first frame is small.
    const equityPage = list(...EQUITY);
    const account = h("div", { class: "stats", dataset: { panel: "account" } }, message("loading…"));
    const state = h("div", { class: "state-line" });
    const charts = h("div", { class: "grid" });
    view.append(section("Account", account, state));
    if (hasRole("risk-officer")) view.append(killSwitch(app));
    view.append(section("Equity, P&L and exposure", charts));
    const equity = timeChart(charts, { name: "equity", title: "Equity", series: [{ label: "equity" }] });
    const equityPoint = (p) => ({ x: toMillis(pick(p, "ts_ns", "ts")) / 1000, y0: numberOr(p.equity) });
    const ready = equityPage.then(
      (page) => equity.rows(page.items.map(equityPoint)),
      (e) => showError(equity.figure, e),
    );
    app.onState((s) => replace(state, "Trading state: ", stateBadge(s)));
    let rest = null; // the rest of the page, once the first chart is drawn (before the shell starts the stream)
    ready.then(() => {
      rest = theRest(view, charts, account, state);
    });
    return {
      ready,
      onEvent(channel, item) {
        if (channel === "equity") equity.append(equityPoint(item).x, [equityPoint(item).y0]);
        else rest?.onEvent(channel, item);
      },
    };
  },
};

// The daily P&L and exposure charts, the positions and the latest fills, and the account's figures.
function theRest(view, charts, account, state) {
  let days = [];
  const pnl = barChart(charts, {
    name: "pnl-daily",
    title: "Daily P&L (account: realized + unrealized)",
    labels: () => days,
    series: [{ label: "P&L", fill: "#7ee78799", stroke: "#7ee787" }],
  });
  let symbols = [];
  const exposureChart = barChart(charts, {
    name: "exposure",
    title: "Exposure by symbol (|quantity × price|)",
    labels: () => symbols,
    series: [{ label: "exposure" }],
  });
  const positions = table({ name: "positions", columns: POSITION_COLUMNS, rowKey: (p) => p.symbol, empty: "no positions" });
  const fills = table({ name: "fills", columns: FILL_COLUMNS, rowKey: fillKey, empty: "no fill since this page opened", limit: 50 });
  const exposureTotals = h("p", { class: "muted" });
  view.append(
    section("Positions", positions.el, exposureTotals),
    section("Latest fills (live)", fills.el),
  );
  const held = new Map();
  const drawExposure = () => {
    const rows = exposure([...held.values()]);
    symbols = rows.map((r) => r.symbol);
    exposureChart.rows(rows.map((r, i) => ({ x: i, y0: r.value })));
    const net = [...held.values()].reduce((s, p) => s + Number(p.quantity) * Number(p.market_price) || s, 0);
    const gross = rows.reduce((s, r) => s + r.value, 0);
    replace(exposureTotals, `gross ${money(gross.toFixed(2))} · net ${money(net.toFixed(2))}`);
  };

  const showAccount = (a) => {
    replace(
      account,
      stat("Equity", money(a.equity), { dataset: { field: "equity" } }),
      stat("Start-of-day equity", money(a.start_of_day_equity)),
      stat("P&L today", money(a.pnl_today), { dataset: { field: "pnl-today" } }),
      stat("Realized P&L today", money(pick(a, "realized_pnl_today", "realized_pnl"))),
      stat("Unrealized P&L", money(pick(a, "unrealized_pnl_today", "unrealized_pnl"))),
      stat("Gross exposure", money(a.gross_exposure)),
      stat("Net exposure", money(a.net_exposure)),
      stat("Open positions", String(a.open_positions ?? "–")),
    );
    if (pick(a, "trading_state")) replace(state, "Trading state: ", stateBadge(a.trading_state));
  };
  const loadAccount = throttle(() =>
    call("/api/v1/account").then(showAccount, (e) => replace(account, message(errorText(e), "error"))),
  );
  loadAccount();
  const loadPnl = throttle(() => list("/api/v1/pnl/daily", { symbol: "_all", limit: 500 }).then(
    (page) => {
      const items = [...page.items].sort((a, b) => a.day.localeCompare(b.day)).slice(-30);
      days = items.map((d) => d.day.slice(5));
      pnl.rows(items.map((d, i) => ({ x: i, y0: (Number(d.realized) || 0) + (Number(d.unrealized) || 0) })));
    },
    (e) => showError(pnl.figure, e),
  ));
  loadPnl();
  list("/api/v1/positions", { limit: 500 }).then(
    (page) => {
      for (const p of page.items) held.set(p.symbol, p);
      positions.set(page.items);
      drawExposure();
    },
    (e) => positions.el.append(message(errorText(e), "error")),
  );

  return {
    onEvent(channel, item) {
      if (channel === "positions") {
        held.set(item.symbol, item);
        positions.upsert(item);
        drawExposure();
        loadAccount();
      } else if (channel === "fills") fills.upsert(item);
      else if (channel === "pnl" && item.symbol === "_all") loadPnl();
    },
  };
}
