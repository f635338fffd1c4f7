// Risk: the trading state, each limit with its utilisation (a meter: a value against its limit), denials by reason
// and breaches.

import { call, list } from "../api.js";
import { cell, h, num, pick, replace, time } from "../dom.js";
import { errorText, message, section, stateBadge, since, table } from "../ui.js";

const BREACH_COLUMNS = [
  { label: "Time", get: (b) => pick(b, "ts", "ts_event", "raised_at"), format: time },
  { label: "Severity", key: "severity" },
  { label: "Limit", get: (b) => pick(b, "limit", "kind", "rule") },
  { label: "Message", get: (b) => pick(b, "message", "summary", "detail") },
];

function limitRow(limit) {
  const used = Number(pick(limit, "utilisation", "utilization"));
  const ratio = Number.isFinite(used) ? Math.max(0, used) : 0;
  return h(
    "div",
    { class: `limit ${ratio >= 0.9 ? "limit-hot" : ""}`, dataset: { limit: limit.name } },
    h("span", { class: "limit-name" }, limit.name ?? "limit"),
    h("meter", { min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0, value: Math.min(1, ratio), "aria-label": `${limit.name} utilisation` }),
    h("span", { class: "num" }, `${num(ratio * 100, 1)} % (${cell(limit.value ?? limit.current)} of ${cell(limit.limit ?? limit.max)})`),
  );
}

export default {
  path: "risk",
  title: "Risk",
  render(view, app) {
    const state = h("p", { dataset: { panel: "risk-state" } }, "Trading state: ", stateBadge(app.state()));
    const limits = h("div", { class: "limits", dataset: { panel: "limits" } }, message("loading…"));
    const denials = h("div", { dataset: { panel: "denials" } });
    const breaches = table({ name: "breaches", columns: BREACH_COLUMNS, rowKey: (b) => String(pick(b, "id", "alert_id", "ts") ?? Math.random()), empty: "no breaches" });
    view.append(section("Trading state", state), section("Limit utilisation", limits), section("Denials by reason (24 h)", denials), section("Breaches", breaches.el));
    const loadRisk = () =>
      call("/api/v1/risk").then(
        (risk) => {
          const items = risk.limits ?? [];
          replace(limits, items.length ? items.map(limitRow) : message("no limit reported"));
        },
        (e) => replace(limits, message(errorText(e), "error")),
      );
    loadRisk();
    list("/api/v1/risk/denials", { from: since(86400) }).then(
      (page) =>
        replace(
          denials,
          page.items.length
            ? h("ul", {}, page.items.map((d) => h("li", {}, `${pick(d, "reason", "reason_code")}: ${pick(d, "count", "denials")}`)))
            : message("no denials"),
        ),
      (e) => replace(denials, message(errorText(e), "error")),
    );
    list("/api/v1/risk/breaches").then(
      (page) => breaches.set(page.items),
      (e) => breaches.el.append(message(errorText(e), "error")),
    );
    app.onState((s) => replace(state, "Trading state: ", stateBadge(s)));
    return {
      onEvent(channel, item) {
        if (channel === "risk") {
          if (item.severity || item.message) breaches.upsert(item);
          loadRisk();
        }
      },
    };
  },
};
