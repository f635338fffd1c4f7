// The application shell: the header (navigation, the trading state, the live connection's state, the user), the
// banner of firing alerts, and the page of the current path (/app/<page>). One live stream serves every page.

import { call, currentUser, dropPreloaded, list, logout } from "./api.js";
import { h, replace } from "./dom.js";
import { loginPage } from "./login.js";
import audit from "./pages/audit.js";
import execution from "./pages/execution.js";
import models from "./pages/models.js";
import orders from "./pages/orders.js";
import overview from "./pages/overview.js";
import quality from "./pages/quality.js";
import risk from "./pages/risk.js";
import { pageName } from "./routes.js";
import { LiveStream } from "./stream.js";
import { stateBadge, stateName } from "./ui.js";

export const PAGES = [overview, orders, execution, quality, risk, models, audit];

function pageOf(pathname) {
  const name = pageName(pathname);
  return PAGES.find((p) => p.path === name) ?? overview;
}

function changedAtNs(value) {
  const ns = value && typeof value === "object" ? value.changed_at_ns : undefined;
  if (ns === undefined || ns === null) return null;
  try {
    return BigInt(ns);
  } catch {
    return null;
  }
}

class Shell {
  constructor(root) {
    this.root = root;
    this.tradingState = "UNKNOWN";
    this.stateChangedNs = -1n;
    this.stateListeners = new Set();
    this.alerts = new Map();
    this.page = null;
    this.stream = null;
  }

  // --- the trading state, shown on every page
  state() {
    return this.tradingState;
  }

  onState(listener) {
    this.stateListeners.add(listener);
  }

  // value: a risk view (the API's answer or a live push) or a state's name. A view older than the one shown is
  // ignored: the answer to a read sent before a change can arrive after the change's push.
  setState(value) {
    const changedNs = changedAtNs(value);
    if (changedNs !== null) {
      if (changedNs < this.stateChangedNs) return;
      this.stateChangedNs = changedNs;
    }
    this.tradingState = stateName(value);
    replace(this.stateEl, "Trading: ", stateBadge(this.tradingState));
    for (const listener of this.stateListeners) listener(this.tradingState);
  }

  refreshState() {
    return call("/api/v1/risk").then(
      (r) => this.setState(r),
      () => {},
    );
  }

  // --- firing alerts
  showAlerts() {
    const firing = [...this.alerts.values()];
    this.banner.hidden = firing.length === 0;
    replace(
      this.banner,
      firing.length
        ? [h("strong", {}, `${firing.length} alert${firing.length > 1 ? "s" : ""} firing: `), firing.map((a) => h("span", { class: "alert-item", dataset: { rule: a.rule } }, `${a.summary || a.rule} `))]
        : [],
    );
  }

  alert(item) {
    const key = `${item.rule}|${item.subject ?? ""}`;
    const ended = String(item.status).toUpperCase() !== "FIRING";
    if (ended) this.alerts.delete(key);
    else this.alerts.set(key, item);
    this.showAlerts();
  }

  // --- the live connection
  live({ state, delayMs }) {
    this.liveEl.dataset.live = state;
    const text =
      state === "live" ? "live" : state === "connecting" ? "connecting…" : `connection lost: reconnecting in ${Math.ceil(delayMs / 1000)} s`;
    replace(this.liveEl, text);
  }

  dispatch(channel, item) {
    if (channel === "risk" && (item.state || item.trading_state)) this.setState(item);
    if (channel === "alerts") this.alert(item);
    this.page?.onEvent?.(channel, item);
  }

  // --- layout and navigation
  build() {
    const user = currentUser();
    this.stateEl = h("span", { class: "header-state", dataset: { testid: "trading-state" } });
    this.liveEl = h("span", { class: "live", role: "status", "aria-live": "polite", dataset: { live: "connecting" } }, "connecting…");
    this.banner = h("div", { class: "alert-banner", role: "alert", hidden: true });
    this.nav = h(
      "nav",
      { "aria-label": "pages" },
      h(
        "ul",
        {},
        PAGES.map((p) =>
          h(
            "li",
            {},
            h(
              "a",
              {
                href: `/app/${p.path}`,
                dataset: { page: p.path },
                onclick: (event) => {
                  if (event.ctrlKey || event.metaKey || event.shiftKey) return;
                  event.preventDefault();
                  history.pushState({}, "", `/app/${p.path}`);
                  this.show();
                },
              },
              p.title,
            ),
          ),
        ),
      ),
    );
    this.view = h("main", { id: "main", tabindex: -1 });
    const logoutButton = h(
      "button",
      {
        type: "button",
        class: "secondary small",
        onclick: async () => {
          this.stream?.stop();
          await logout();
          location.assign("/");
        },
      },
      "Log out",
    );
    replace(
      this.root,
      h("a", { class: "skip", href: "#main" }, "Skip to content"),
      h(
        "header",
        { class: "top" },
        h("span", { class: "brand" }, "Trading"),
        this.nav,
        h("div", { class: "status" }, this.stateEl, this.liveEl, h("span", { class: "user" }, `${user.subject} (${user.roles.join(", ")})`), logoutButton),
      ),
      this.banner,
      this.view,
    );
    this.setState(this.tradingState);
    window.addEventListener("popstate", () => this.show());
  }

  show() {
    const page = pageOf(location.pathname);
    for (const a of this.nav.querySelectorAll("a")) {
      if (a.dataset.page === page.path) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    this.page?.destroy?.();
    this.stateListeners.clear();
    replace(this.view, h("h1", {}, page.title));
    document.title = `${page.title} · Trading`;
    this.page = page.render(this.view, this) || {};
    this.view.dataset.page = page.path;
  }

  async start() {
    this.build();
    this.show();
    dropPreloaded();
    // the page's first chart is read first: the shell's own reads and the stream follow once it has its data
    await this.page.ready;
    this.refreshState();
    list("/api/v1/alerts", { status: "firing" }).then(
      (page) => page.items.forEach((a) => this.alert(a)),
      () => {},
    );
    this.stream = new LiveStream({
      onEvent: (channel, item) => this.dispatch(channel, item),
      onStatus: (status) => this.live(status),
    }).start();
  }
}

// session: the stored session's refresh, started by main.js (null when this tab holds none).
export async function main(root, session) {
  const enter = () => {
    if (!location.pathname.startsWith("/app")) history.replaceState({}, "", "/app/overview");
    new Shell(root).start();
  };
  if (session) {
    try {
      await session; // its answer names the user and their roles: the shell needs nothing more
      return enter();
    } catch {
      // the stored session ended: log in again
    }
  }
  if (location.pathname !== "/") history.replaceState({}, "", "/");
  loginPage(root, enter);
}
