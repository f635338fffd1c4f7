// Audit: search the hash-chained ledger by topic, actor and time; the chain's verification status.

import { call, list } from "../api.js";
import { h, replace, time } from "../dom.js";
import { errorText, message, section, since, table } from "../ui.js";

const COLUMNS = [
  { label: "Seq", key: "sequence", class: "num" },
  { label: "Recorded", key: "recorded_at", format: time },
  { label: "Topic", key: "topic" },
  { label: "Actor", key: "actor" },
  { label: "Type", key: "message_type" },
  { label: "Key", key: "key" },
  { label: "Order", key: "client_order_id" },
  { label: "Hash", get: (e) => String(e.hash ?? "").slice(0, 16) },
];

function localInput(id, label, value) {
  return [h("label", { for: id }, label), h("input", { id, name: id, type: "datetime-local", value })];
}

export default {
  path: "audit",
  title: "Audit",
  render(view) {
    const status = h("div", { dataset: { panel: "audit-status" } }, message("checking the chain…"));
    const results = table({ name: "audit", columns: COLUMNS, rowKey: (e) => String(e.sequence), empty: "no entry matches" });
    const note = h("p", { class: "muted", role: "status" });
    const topic = h("input", { id: "a-topic", name: "topic", maxlength: 200, autocomplete: "off", placeholder: "oms.events.v1" });
    const actor = h("input", { id: "a-actor", name: "actor", maxlength: 200, autocomplete: "off", placeholder: "user:alice" });
    const local = (iso) => iso.slice(0, 16);
    const [fromLabel, from] = localInput("a-from", "From (UTC)", local(since(86400)));
    const [toLabel, to] = localInput("a-to", "To (UTC)", local(new Date(Date.now() + 60_000).toISOString()));
    const search = async () => {
      replace(note, "searching…");
      try {
        const page = await list("/api/v1/audit", {
          topic: topic.value.trim(),
          actor: actor.value.trim(),
          from: from.value ? `${from.value}:00Z` : undefined,
          to: to.value ? `${to.value}:00Z` : undefined,
        });
        results.set(page.items);
        replace(note, `${page.items.length} entries${page.next ? " (more: narrow the search)" : ""}`);
      } catch (e) {
        replace(note, errorText(e));
      }
    };
    const form = h(
      "form",
      {
        class: "filters",
        onsubmit: (event) => {
          event.preventDefault();
          search();
        },
      },
      h("label", { for: "a-topic" }, "Topic"),
      topic,
      h("label", { for: "a-actor" }, "Actor"),
      actor,
      fromLabel,
      from,
      toLabel,
      to,
      h("button", { type: "submit", class: "primary" }, "Search"),
    );
    view.append(section("Chain", status), section("Search the ledger", form, note, results.el));
    call("/api/v1/audit/status").then(
      (s) => {
        const v = s.verification;
        replace(
          status,
          h(
            "p",
            {},
            v
              ? h("span", { class: `badge ${s.verified ? "state-active" : "state-halted"}` }, s.verified ? "chain verified" : "chain NOT verified")
              : h("span", { class: "badge" }, "not verified yet"),
          ),
          v
            ? h("p", { class: "muted" }, `${v.entries_checked} entries checked at ${time(v.envelope?.ts_event)}${v.first_error ? `: ${v.first_error}` : ""}`)
            : h("p", { class: "muted" }, "no verification recorded yet"),
        );
      },
      (e) => replace(status, message(errorText(e), "error")),
    );
    search();
    return {};
  },
};
