// Models: the live and shadow versions of each model, live-against-shadow agreement (the share of bars where the
// shadow's target took the live one's side), prediction drift per feature and realized against expected reward from
// the monitoring reports; a Promote button for model managers only.

import { call, hasRole } from "../api.js";
import { barChart } from "../charts.js";
import { h, num, pct, replace, time } from "../dom.js";
import { errorText, message, numberOr, section, table } from "../ui.js";

const VERSION_COLUMNS = [
  { label: "Model", key: "model_name" },
  { label: "Role", key: "role" },
  { label: "Version", key: "model_version" },
  { label: "Previous", key: "previous_version" },
  { label: "Since", get: (m) => m.envelope?.ts_event, format: time },
  { label: "Reason", key: "reason" },
];
const AGREEMENT_COLUMNS = [
  { label: "Live version", key: "live_version" },
  { label: "Shadow version", key: "shadow_version" },
  { label: "Bars compared", key: "compared", class: "num" },
  { label: "Agreed", key: "agreed", class: "num" },
  { label: "Agreement", key: "agreement", format: pct, class: "num" },
];
const MONITORING_COLUMNS = [
  { label: "Model", get: (r) => `${r.model_name} v${r.model_version}` },
  { label: "Role", key: "role" },
  { label: "Observations", key: "observations", class: "num" },
  { label: "Max drift", key: "max_drift", format: (v) => num(v, 3), class: "num" },
  { label: "Drift alert", key: "drift_alert" },
  { label: "Realized reward", key: "realised_reward", format: (v) => num(v, 5), class: "num" },
  { label: "Expected reward", key: "expected_reward", format: (v) => num(v, 5), class: "num" },
  { label: "Report", key: "ts", format: time },
];

function promoteForm(outcome) {
  const name = h("input", { id: "p-name", name: "name", required: true, maxlength: 64, autocomplete: "off" });
  const version = h("input", { id: "p-version", name: "version", required: true, maxlength: 32, autocomplete: "off" });
  return h(
    "form",
    {
      class: "filters",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await call(`/api/v1/models/${encodeURIComponent(name.value.trim())}/promote`, {
            method: "POST",
            body: { version: version.value.trim() },
          });
          replace(outcome, `promoted ${name.value} to version ${version.value}`);
        } catch (e) {
          replace(outcome, errorText(e));
        }
      },
    },
    h("label", { for: "p-name" }, "Model"),
    name,
    h("label", { for: "p-version" }, "Version"),
    version,
    h("button", { type: "submit", class: "primary" }, "Promote"),
  );
}

export default {
  path: "models",
  title: "Models",
  render(view) {
    const outcome = h("p", { role: "status" });
    const versions = table({ name: "models", columns: VERSION_COLUMNS, rowKey: (m) => `${m.model_name}|${m.role}`, empty: "no model loaded" });
    const agreement = table({ name: "agreement", columns: AGREEMENT_COLUMNS, rowKey: (a) => `${a.live_version}|${a.shadow_version}`, empty: "no shadow model compared" });
    const monitoring = table({ name: "monitoring", columns: MONITORING_COLUMNS, rowKey: (r) => `${r.model_name}|${r.model_version}|${r.role}`, empty: "no monitoring report yet" });
    const charts = h("div", { class: "grid" });
    view.append(
      section("Live and shadow", versions.el, hasRole("model-manager") ? promoteForm(outcome) : null, outcome),
      section("Live against shadow", agreement.el),
      section("Drift and reward", charts, monitoring.el),
    );
    let features = [];
    const drift = barChart(charts, {
      name: "model-drift",
      title: "Prediction drift of the live model: mean shift per feature (training stds)",
      labels: () => features,
      series: [{ label: "mean shift", digits: 3 }],
    });
    let reports = [];
    const rewards = barChart(charts, {
      name: "model-rewards",
      title: "Realized against expected reward per version",
      labels: () => reports,
      series: [{ label: "realized", digits: 5 }, { label: "expected", digits: 5, fill: "#ffb45499", stroke: "#ffb454" }],
    });
    const show = (answer) => {
      versions.set(answer.models ?? []);
      agreement.set(answer.agreement ?? []);
      const monitored = answer.monitoring ?? [];
      monitoring.set(monitored);
      const live = monitored.find((r) => r.role === "live") ?? monitored[0];
      features = (live?.drift ?? []).map((d) => d.feature);
      drift.rows((live?.drift ?? []).map((d, i) => ({ x: i, y0: numberOr(d.mean_shift) })));
      reports = monitored.map((r) => `${r.model_name} v${r.model_version} ${r.role}`);
      rewards.rows(monitored.map((r, i) => ({ x: i, y0: numberOr(r.realised_reward), y1: numberOr(r.expected_reward) })));
    };
    call("/api/v1/models").then(show, (e) => charts.append(message(errorText(e), "error")));
    return {
      onEvent(channel, item) {
        if (channel === "models") show(item);
      },
    };
  },
};
