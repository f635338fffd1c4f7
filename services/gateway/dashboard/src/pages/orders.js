// Orders: a filtered, paged table; each order opens its lineage (signal, risk decision, order events, broker order,
// fills, execution quality). Live order events update the rows; live fills are listed as they come.

import { call, list } from "../api.js";
import { cell, h, money, pick, replace, time } from "../dom.js";
import { errorText, message, section, table } from "../ui.js";
import { FILL_COLUMNS, fillKey } from "./overview.js";

const COLUMNS = [
  { label: "Client order id", key: "client_order_id" },
  { label: "Symbol", key: "symbol" },
  { label: "Side", key: "side" },
  { label: "Quantity", key: "quantity", class: "num" },
  { label: "Filled", key: "filled_quantity", class: "num" },
  { label: "Avg price", key: "average_fill_price", format: money, class: "num" },
  { label: "Status", key: "status" },
  { label: "Updated", get: (o) => pick(o, "updated_at", "created_at"), format: time },
];

function definition(entries) {
  return h(
    "dl",
    { class: "kv" },
    entries.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, cell(value))]),
  );
}

function lineageView(detail) {
  const order = detail.order ?? {};
  const l = detail.lineage ?? {};
  const signal = l.signal ?? {};
  const risk = l.risk_decision ?? {};
  const quality = l.execution_quality ?? {};
  const events = l.events ?? [];
  const fills = l.fills ?? [];
  return h(
    "div",
    { class: "lineage", dataset: { lineage: order.client_order_id ?? "" } },
    h("h3", {}, `Lineage of ${order.client_order_id} (${order.symbol} ${order.side} ${order.quantity}, ${order.status})`),
    h("h4", {}, "Signal"),
    definition([
      ["signal id", l.signal_id || signal.signal_id],
      ["model", signal.model_name],
      ["model version", l.model_version || signal.model_version],
      ["feature hash", l.feature_hash || signal.feature_hash],
      ["target weight", signal.target_weight],
      ["reference price", signal.reference_price],
      ["submitted by", l.submitted_by],
    ]),
    h("h4", {}, "Risk decision"),
    definition([
      ["approved", risk.approved],
      ["reason code", risk.reason_code],
      ["reason", risk.reason],
      ["risk decision id", risk.risk_decision_id],
      ["limits version", risk.limits_version],
    ]),
    h("h4", {}, "Broker"),
    definition([["broker order id", l.broker_order_id]]),
    h("h4", {}, "Order events"),
    h(
      "ol",
      { class: "events" },
      events.length
        ? events.map((e) => h("li", {}, `${time(e.ts)} ${e.event_type} → ${e.status} ${e.reason ?? ""}`))
        : h("li", { class: "muted" }, "none"),
    ),
    h("h4", {}, "Fills"),
    h(
      "ol",
      { class: "events" },
      fills.length
        ? fills.map((f) => h("li", {}, `${time(f.ts)} ${f.quantity} @ ${money(f.price)} (${f.fill_id})`))
        : h("li", { class: "muted" }, "none"),
    ),
    h("h4", {}, "Execution quality"),
    Object.keys(quality).length
      ? definition([
          ["slippage bps", quality.slippage_bps],
          ["fill ratio", quality.fill_ratio],
          ["arrival price", quality.arrival_price],
          ["average fill price", quality.average_fill_price],
          ["submit → accept ms", Number(quality.submit_to_accept_ns) / 1e6],
          ["submit → first fill ms", Number(quality.submit_to_first_fill_ns) / 1e6],
        ])
      : message("not measured yet"),
  );
}

export default {
  path: "orders",
  title: "Orders",
  render(view) {
    const detail = h("div", { class: "detail", tabindex: -1 });
    const open = async (order) => {
      replace(detail, message("loading lineage…"));
      try {
        replace(detail, lineageView(await call(`/api/v1/orders/${encodeURIComponent(order.client_order_id)}`)));
      } catch (e) {
        replace(detail, message(errorText(e), "error"));
      }
      detail.focus();
    };
    const orders = table({ name: "orders", columns: COLUMNS, rowKey: (o) => o.client_order_id, onOpen: open, empty: "no orders" });
    const fills = table({ name: "fills", columns: FILL_COLUMNS, rowKey: fillKey, empty: "no fill since this page opened", limit: 50 });
    const symbol = h("input", { id: "f-symbol", name: "symbol", maxlength: 16, autocomplete: "off" });
    const status = h(
      "select",
      { id: "f-status", name: "status" },
      ["", "INITIALIZED", "SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "FILLED", "PENDING_CANCEL", "CANCELED", "REJECTED", "DENIED", "EXPIRED"].map((s) =>
        h("option", { value: s }, s || "any"),
      ),
    );
    const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
    const note = h("p", { class: "muted", role: "status" });
    let cursor = null;
    const load = async (append) => {
      try {
        const page = await list("/api/v1/orders", {
          symbol: symbol.value.trim().toUpperCase(),
          status: status.value,
          cursor: append ? cursor : undefined,
        });
        if (append) page.items.forEach((o) => orders.upsert(o, false));
        else orders.set(page.items);
        cursor = page.next;
        more.hidden = !cursor;
        replace(note, `${orders.size()} orders shown`);
      } catch (e) {
        replace(note, errorText(e));
      }
    };
    more.addEventListener("click", () => load(true));
    const filters = h(
      "form",
      {
        class: "filters",
        onsubmit: (event) => {
          event.preventDefault();
          load(false);
        },
      },
      h("label", { for: "f-symbol" }, "Symbol"),
      symbol,
      h("label", { for: "f-status" }, "Status"),
      status,
      h("button", { type: "submit", class: "primary" }, "Filter"),
    );
    view.append(section("Orders", filters, orders.el, more, note), section("Lineage", detail), section("Latest fills (live)", fills.el));
    replace(detail, message("open an order to see its lineage"));
    load(false);
    return {
      onEvent(channel, item) {
        if (channel === "orders" && item.client_order_id) {
          if (!symbol.value || item.symbol === symbol.value.trim().toUpperCase()) orders.upsert(item);
        } else if (channel === "fills") fills.upsert(item);
      },
    };
  },
};
