// Audit: search the hash-chained ledger by topic, actor and time; the chain's verification status.

import { call, list } from "../api.js";
import { h, pick, replace, time } from "../dom.js";
import { errorText, message, section, since, table } from "../ui.js";

const COLUMNS = [
  { label: "Seq", get: (e) => pick(e, "sequence", "seq", "offset") , class: "num"},
  { label: "Time", get: (e) => pick(e, "ts", "ts_event", "recorded_at"), format: time },
  { label: "Topic", key: "topic" },
  { label: "Actor", get: (e) => pick(e, "actor", "producer") },
  { label: "Type", get: (e) => pick(e, "message_type", "type") },
  { label: "Key", key: "key" },
  { label: "Hash", get: (e) => String(pick(e, "hash", "entry_hash") ?? "").slice(0, 16) },
];

function localInput(id, label, value) {
  return [h("label", { for: id }, label), h("input", { id, name: id, type: "datetime-local", value })];
}

export default {
  path: "audit",
  title: "Audit",
  render(view) {
    const status = h("div", { dataset: { panel: "audit-status" } }, message("checking the chain…"));
    const results = table({ name: "audit", columns: COLUMNS, rowKey: (e) => String(pick(e, "sequence", "seq", "hash") ?? Math.random()), empty: "no entry matches" });
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
        const ok = pick(s, "ok", "valid", "verified");
        replace(
          status,
          h("p", {}, h("span", { class: `badge ${ok ? "state-active" : "state-halted"}` }, ok ? "chain verified" : "chain NOT verified")),
          h("p", { class: "muted" }, `${pick(s, "entries", "checked", "count") ?? "?"} entries checked ${time(pick(s, "verified_at", "checked_at", "ts"))}`),
        );
      },
      (e) => replace(status, message(errorText(e), "error")),
    );
    search();
    return {};
  },
};
