// Risk: the trading state, each limit with its utilisation (a meter: a value against its limit), denials by reason
// and breaches.

import { call, list } from "../api.js";
import { cell, h, num, replace, time } from "../dom.js";
import { errorText, message, section, since, stateBadge, table, throttle } from "../ui.js";

const BREACH_COLUMNS = [
  { label: "Time", get: (b) => b.envelope?.ts_event, format: time },
  { label: "Severity", key: "severity" },
  { label: "Kind", key: "kind" },
  { label: "Message", key: "message" },
  { label: "Details", key: "details" },
];

// A limit with its utilisation (used / limit); a limit that is not a level (an order's size, a collar) has none.
function limitRow(limit) {
  const ratio = limit.utilisation === null || limit.utilisation === undefined ? null : Math.max(0, Number(limit.utilisation));
  const label = limit.name.replaceAll("_", " ");
  return h(
    "div",
    { class: `limit ${ratio !== null && ratio >= 0.9 ? "limit-hot" : ""}`, dataset: { limit: limit.name } },
    h("span", { class: "limit-name" }, label),
    ratio === null
      ? h("span", { class: "muted" }, "per order")
      : h("meter", { min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0, value: Math.min(1, ratio), "aria-label": `${label}: utilisation` }),
    h("span", { class: "num" }, ratio === null ? `limit ${cell(limit.limit)}` : `${num(ratio * 100, 1)} % (${cell(limit.used)} of ${cell(limit.limit)})`),
  );
}

export default {
  path: "risk",
  title: "Risk",
  render(view, app) {
    const state = h("p", { dataset: { panel: "risk-state" } }, "Trading state: ", stateBadge(app.state()));
    const limits = h("div", { class: "limits", dataset: { panel: "limits" } }, message("loading…"));
    const denials = h("div", { dataset: { panel: "denials" } });
    const breaches = table({ name: "breaches", columns: BREACH_COLUMNS, rowKey: (b) => b.envelope?.message_id ?? String(Math.random()), empty: "no breaches" });
    view.append(section("Trading state", state), section("Limit utilisation", limits), section("Denials by reason (24 h)", denials), section("Breaches", breaches.el));
    const loadRisk = throttle(() =>
      call("/api/v1/risk").then(
        (risk) => {
          const items = risk.limits ?? [];
          replace(
            limits,
            h("p", { class: "muted" }, `limits version ${risk.limits_version || "–"}; state set by ${risk.actor || "–"}: ${risk.reason || ""}`),
            items.length ? items.map(limitRow) : message("no limit reported"),
          );
        },
        (e) => replace(limits, message(errorText(e), "error")),
      ),
    );
    loadRisk();
    call("/api/v1/risk/denials", { params: { from: since(86400) } }).then(
      (d) => {
        const reasons = Object.entries(d.by_reason ?? {}).sort((a, b) => b[1] - a[1]);
        replace(
          denials,
          h("p", {}, `${d.total} denied`),
          reasons.length ? h("ul", {}, reasons.map(([reason, count]) => h("li", {}, `${reason}: ${count}`))) : null,
        );
      },
      (e) => replace(denials, message(errorText(e), "error")),
    );
    list("/api/v1/risk/breaches").then(
      (page) => breaches.set(page.items),
      (e) => breaches.el.append(message(errorText(e), "error")),
    );
    app.onState((s) => replace(state, "Trading state: ", stateBadge(s)));
    return {
      onEvent(channel, item) {
        if (channel === "risk") loadRisk();
        else if (channel === "breaches") breaches.upsert(item);
      },
    };
  },
};
