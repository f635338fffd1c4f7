// The kill switch, built only for a risk officer. Halting asks for a reason and a confirmation in a modal dialog;
// releasing it is a request: the risk service keeps it as a pending change until a second risk officer approves
// (four eyes), and the page says so. Pending changes are listed with an Approve button.

import { call, currentUser, list } from "../api.js";
import { h, replace, time } from "../dom.js";
import { errorText, message, section, stateBadge } from "../ui.js";

function confirmDialog({ title, text, confirmLabel, danger, withCancelOrders }) {
  return new Promise((resolve) => {
    const reason = h("input", { id: "ks-reason", name: "reason", required: true, minlength: 3, maxlength: 200, autocomplete: "off" });
    const cancelOrders = h("input", { id: "ks-cancel", type: "checkbox", checked: true });
    const error = h("p", { class: "error", role: "alert" });
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "ks-title" },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: "ks-title" }, title),
        h("p", {}, text),
        h("label", { for: "ks-reason" }, "Reason"),
        reason,
        withCancelOrders ? h("label", { class: "check" }, cancelOrders, " cancel every open order") : null,
        error,
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "secondary", value: "cancel", onclick: () => finish(null) }, "Cancel"),
          h("button", { type: "submit", class: danger ? "danger" : "primary", value: "confirm" }, confirmLabel),
        ),
      ),
    );
    const finish = (result) => {
      dialog.close();
      dialog.remove();
      resolve(result);
    };
    dialog.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (reason.value.trim().length < 3) {
        replace(error, "give a reason (at least 3 characters)");
        reason.focus();
        return;
      }
      finish({ reason: reason.value.trim(), cancelOpenOrders: cancelOrders.checked });
    });
    dialog.addEventListener("cancel", () => finish(null));
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  });
}

// A pending change in words: a trading state to lift to, or limits to loosen.
function describe(change) {
  if (change?.trading_state) return `trading state → ${String(change.trading_state.state ?? "").replace(/^TRADING_STATE_/, "")}`;
  if (change?.limits) return "looser limits";
  return "change";
}

export function killSwitch(app) {
  const state = h("span", {}, stateBadge(app.state()));
  const outcome = h("p", { role: "status", class: "outcome" });
  const pending = h("div", { dataset: { panel: "pending-changes" } });
  const halt = h(
    "button",
    {
      type: "button",
      class: "danger",
      id: "kill-switch",
      onclick: async () => {
        const answer = await confirmDialog({
          title: "Halt trading?",
          text: "Risk denies every new order at once. This is the kill switch.",
          confirmLabel: "Halt trading now",
          danger: true,
          withCancelOrders: true,
        });
        if (!answer) return halt.focus();
        try {
          await call("/api/v1/risk/halt", {
            method: "POST",
            body: { reason: answer.reason, cancel_open_orders: answer.cancelOpenOrders },
          });
          replace(outcome, "Trading is halted.");
          app.refreshState();
        } catch (e) {
          replace(outcome, errorText(e));
        }
      },
    },
    "Halt trading (kill switch)",
  );
  const resume = h(
    "button",
    {
      type: "button",
      class: "primary",
      id: "request-resume",
      onclick: async () => {
        const answer = await confirmDialog({
          title: "Request to resume trading?",
          text: "Resuming loosens risk: it becomes a pending change that a second risk officer must approve (four eyes).",
          confirmLabel: "Request resume",
        });
        if (!answer) return resume.focus();
        try {
          const answered = await call("/api/v1/risk/resume", { method: "POST", body: { reason: answer.reason } });
          const id = answered?.outcome?.change_id ?? "";
          replace(outcome, `Resume requested: pending change ${id} waits for a second risk officer's approval (four eyes).`);
          loadPending();
        } catch (e) {
          replace(outcome, errorText(e));
        }
      },
    },
    "Request resume",
  );
  const loadPending = () =>
    list("/api/v1/risk/changes").then(
      (page) => {
        const me = `user:${currentUser()?.subject}`;
        replace(
          pending,
          page.items.length ? h("h3", {}, "Pending changes (four eyes)") : null,
          page.items.map((c) => {
            const id = c.change_id;
            const mine = c.requested_by === me;
            return h(
              "div",
              { class: "pending", dataset: { change: id } },
              h("span", {}, `${describe(c.change)} requested by ${c.requested_by} at ${time(c.envelope?.ts_event)}: ${c.reason}`),
              mine
                ? h("span", { class: "muted" }, " (yours: another risk officer approves)")
                : h(
                    "button",
                    {
                      type: "button",
                      class: "secondary",
                      onclick: async () => {
                        try {
                          await call(`/api/v1/risk/changes/${encodeURIComponent(id)}/approve`, {
                            method: "POST",
                            body: { content_hash: c.content_hash, reason: "approved in the dashboard" },
                          });
                          replace(outcome, `Change ${id} approved.`);
                          loadPending();
                          app.refreshState();
                        } catch (e) {
                          replace(outcome, errorText(e));
                        }
                      },
                    },
                    "Approve",
                  ),
            );
          }),
        );
      },
      (e) => replace(pending, message(errorText(e), "error")),
    );
  loadPending();
  const show = (s) => {
    replace(state, stateBadge(s));
    const halted = String(s).toUpperCase().includes("HALTED");
    halt.hidden = halted;
    resume.hidden = !halted;
  };
  show(app.state());
  app.onState(show);
  return section("Kill switch", h("p", {}, "Trading state: ", state), h("div", { class: "actions" }, halt, resume), outcome, pending);
}
