// Models: every version, which is live and which shadow, live-against-shadow agreement, prediction drift and realized
// against expected return; a Promote button for model managers only.

import { call, hasRole } from "../api.js";
import { barChart } from "../charts.js";
import { h, num, pct, pick, replace } from "../dom.js";
import { errorText, message, numberOr, section, table } from "../ui.js";

const COLUMNS = [
  { label: "Model", get: (m) => pick(m, "name", "model") },
  { label: "Version", key: "version" },
  { label: "Role", get: (m) => pick(m, "role", "stage", "status") },
  { label: "Live/shadow agreement", get: (m) => pick(m, "agreement", "shadow_agreement"), format: pct, class: "num" },
  { label: "Prediction drift", get: (m) => pick(m, "drift", "prediction_drift"), format: (v) => num(v, 3), class: "num" },
  { label: "Realized return", get: (m) => pick(m, "realized_return"), format: (v) => num(v, 4), class: "num" },
  { label: "Expected return", get: (m) => pick(m, "expected_return"), format: (v) => num(v, 4), class: "num" },
];

export default {
  path: "models",
  title: "Models",
  render(view) {
    const charts = h("div", { class: "grid" });
    const outcome = h("p", { role: "status" });
    const columns = hasRole("model-manager")
      ? [
          ...COLUMNS,
          {
            label: "Promote",
            get: (m) => m,
            format: (m) =>
              h(
                "button",
                {
                  type: "button",
                  class: "secondary small",
                  onclick: async () => {
                    try {
                      await call(`/api/v1/models/${encodeURIComponent(pick(m, "name", "model"))}/promote`, { method: "POST", body: { version: m.version } });
                      replace(outcome, `promoted ${pick(m, "name", "model")} ${m.version}`);
                    } catch (e) {
                      replace(outcome, errorText(e));
                    }
                  },
                },
                "Promote",
              ),
          },
        ]
      : COLUMNS;
    const models = table({ name: "models", columns, rowKey: (m) => `${pick(m, "name", "model")}-${m.version}`, empty: "no model registered" });
    view.append(section("Versions", models.el, outcome), section("Live against shadow", charts));
    let labels = [];
    const agreement = barChart(charts, {
      name: "model-agreement",
      title: "Agreement with the live model and prediction drift, per version",
      labels: () => labels,
      series: [{ label: "agreement", digits: 3 }, { label: "drift", digits: 3, fill: "#ff7b7299", stroke: "#ff7b72" }],
    });
    const returns = barChart(charts, {
      name: "model-returns",
      title: "Realized against expected return, per version",
      labels: () => labels,
      series: [{ label: "realized", digits: 4 }, { label: "expected", digits: 4, fill: "#ffb45499", stroke: "#ffb454" }],
    });
    call("/api/v1/models").then(
      (answer) => {
        const items = Array.isArray(answer) ? answer : (answer.items ?? answer.models ?? []);
        models.set(items);
        labels = items.map((m) => `${pick(m, "name", "model")} v${m.version}`);
        agreement.rows(items.map((m, i) => ({ x: i, y0: numberOr(pick(m, "agreement", "shadow_agreement")), y1: numberOr(pick(m, "drift", "prediction_drift")) })));
        returns.rows(items.map((m, i) => ({ x: i, y0: numberOr(m.realized_return), y1: numberOr(m.expected_return) })));
      },
      (e) => charts.append(message(errorText(e), "error")),
    );
    return {};
  },
};
