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
  { label: "Filled", get: (o) => pick(o, "filled_quantity", "filled_qty"), class: "num" },
  { label: "Avg price", get: (o) => pick(o, "average_fill_price", "filled_avg_price"), format: money, class: "num" },
  { label: "Status", key: "status" },
  { label: "Updated", get: (o) => pick(o, "updated_at", "ts", "created_at"), format: time },
];

function definition(entries) {
  return h(
    "dl",
    { class: "kv" },
    entries.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, cell(value))]),
  );
}

function lineageView(order) {
  const l = order.lineage ?? {};
  const signal = l.signal ?? {};
  const risk = l.risk_decision ?? l.risk ?? {};
  const quality = l.execution_quality ?? {};
  const events = l.order_events ?? l.events ?? [];
  const fills = l.fills ?? [];
  return h(
    "div",
    { class: "lineage", dataset: { lineage: order.client_order_id } },
    h("h3", {}, `Lineage of ${order.client_order_id}`),
    h("h4", {}, "Signal"),
    definition([
      ["signal id", pick(signal, "signal_id", "id")],
      ["model version", pick(signal, "model_version", "model")],
      ["feature hash", signal.feature_hash],
      ["target", pick(signal, "target", "target_position", "target_weight")],
    ]),
    h("h4", {}, "Risk decision"),
    definition([
      ["approved", risk.approved],
      ["reason code", pick(risk, "reason_code", "reason")],
      ["decision id", pick(risk, "decision_id", "id")],
    ]),
    h("h4", {}, "Broker"),
    definition([["broker order id", pick(l, "broker_order_id") ?? order.broker_order_id]]),
    h("h4", {}, "Order events"),
    h(
      "ol",
      { class: "events" },
      events.length
        ? events.map((e) => h("li", {}, `${time(pick(e, "ts", "ts_event"))} ${pick(e, "event_type", "type")} ${e.reason ?? ""}`))
        : h("li", { class: "muted" }, "none"),
    ),
    h("h4", {}, "Fills"),
    h(
      "ol",
      { class: "events" },
      fills.length
        ? fills.map((f) => h("li", {}, `${time(pick(f, "ts", "filled_at"))} ${pick(f, "quantity", "last_quantity")} @ ${money(pick(f, "price", "last_price"))} (${pick(f, "fill_id", "id")})`))
        : h("li", { class: "muted" }, "none"),
    ),
    h("h4", {}, "Execution quality"),
    Object.keys(quality).length ? definition(Object.entries(quality)) : message("not measured yet"),
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
      ["", "new", "submitted", "accepted", "partially_filled", "filled", "canceled", "rejected", "denied"].map((s) =>
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
