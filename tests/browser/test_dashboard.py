"""The dashboard in headless Chromium against the platform as `make up` runs it (tests/browser/conftest.py): login,
every page drawing the platform's data, a new fill on screen (its delay from the bus measured and written to
reports/browser/fill-delay.json), the kill switch absent for a viewer (and refused by the API), and a risk
officer's halt reaching every page, the API and the risk service itself; resuming waits for a second risk officer.
Screenshots go to reports/browser/."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from tradectl.stack import Platform
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.testing.waiting import rpc, wait_for

from tests.browser.conftest import Session
from tests.browser.desk import (
    PASSWORD,
    REPORTS,
    BusTail,
    Desk,
    NoFreshPrice,
    in_thread,
    operator_grpc,
    run_async,
    submit_market_order,
)

# the first test also starts the platform (several minutes on a loaded machine): a deadline, not a budget
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
PAGES = ("overview", "orders", "execution", "data-quality", "risk", "models", "audit")
GENEROUS_MS = 15_000


def header_state(session: Session) -> str:
    return str(session.page.get_attribute('[data-testid="trading-state"] .badge', "data-state"))


def test_login_refuses_a_wrong_code_then_lets_the_user_in(browser: Any, desk: Desk) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{desk.url}/")
        page.fill("#username", "tom")
        page.fill("#password", PASSWORD)
        page.fill("#totp", "000000")
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#login-error:has-text('invalid username, password or code')")
        assert page.url == f"{desk.url}/"
        REPORTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(REPORTS / "login.png"))
        page.fill("#password", PASSWORD)
        page.fill("#totp", desk["tom"].code())
        page.click("form.login button[type=submit]")
        page.wait_for_selector('main[data-page="overview"]', timeout=GENEROUS_MS)
        assert page.url.endswith("/app/overview")
        assert "tom (trader, viewer)" in page.inner_text("header")
        page.wait_for_selector('.live[data-live="live"]', timeout=GENEROUS_MS)
        # the tokens: the refresh token in this tab's sessionStorage, no cookie at all
        assert page.evaluate("sessionStorage.getItem('trading.refresh_token')")
        assert context.cookies() == []
        # a reload keeps the session (the refresh token is exchanged for a new access token)
        page.reload()
        page.wait_for_selector('main[data-page="overview"]', timeout=GENEROUS_MS)
    finally:
        context.close()


def test_every_page_renders_the_platforms_data(
    session_as: Callable[..., Session], desk: Desk, platform: Platform
) -> None:
    session = session_as("mona")
    page = session.page
    # a trade of the desk's own, so the book has a position whether or not the policy has traded yet
    try:
        submit_market_order(platform, desk.token("tom"), symbol="IBM")
    except NoFreshPrice as error:
        pytest.skip(f"no order can pass risk here: {error}")
    wait_for(lambda: desk.api("mona", "GET", "/api/v1/positions").json()["items"], 120, "a position in the book")
    page.reload()
    page.wait_for_selector('.live[data-live="live"]', timeout=GENEROUS_MS)
    expectations = {
        "overview": ['[data-table="positions"] tbody tr[data-key]', '[data-chart="equity"]:not([data-points="0"])'],
        "orders": ['[data-table="orders"] tbody tr[data-key]'],
        "execution": ['[data-chart="slippage-time"]'],
        "data-quality": ['[data-chart="quality-score"]'],
        "risk": ['[data-panel="limits"] p.muted', '[data-panel="denials"] p', '[data-panel="risk-state"] .badge'],
        # a served policy's versions when signal runs (it may not have started on a loaded machine: desk.py)
        "models": ['[data-table="models"] tbody tr' + ("[data-key]" if platform.process("signal").pid() else "")],
        "audit": ['[data-panel="audit-status"] .badge'],
    }
    for name in PAGES:
        session.go(name)
        for selector in expectations[name]:
            page.wait_for_selector(selector, timeout=GENEROUS_MS)
        assert page.locator("main .error").count() == 0, page.locator("main .error").all_inner_texts()
        session.shot(f"page-{name}")
    # the lineage of an order
    session.go("orders")
    page.locator('[data-table="orders"] tbody tr[data-key] button.link').first.click()
    page.wait_for_selector(".lineage h4:has-text('Risk decision')", timeout=GENEROUS_MS)
    assert page.locator(".lineage dd").count() > 5
    session.shot("page-orders-lineage")
    assert session.csp_violations() == []


def test_the_pages_work_at_375_px(session_as: Callable[..., Session]) -> None:
    session = session_as("vera", width=375, height=812)
    for name in PAGES:
        session.go(name)
        # nothing wider than the screen but the scrolling tables and charts' own regions
        overflow = session.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} scrolls sideways by {overflow} px at 375 px"
        if name in ("overview", "risk"):
            session.shot(f"mobile-{name}")


# Every text node's colour against the first opaque background behind it: the WCAG contrast ratio.
CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || c[3] === 1) return c.slice(0, 3); } return [255, 255, 255]; };
  const worst = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el.offsetParent || el.closest("canvas, .u-legend .u-marker")) continue;
    const style = getComputedStyle(el);
    if (parseFloat(style.opacity) < 1) continue;
    const a = lum(rgb(style.color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(`${ratio.toFixed(2)}: ${n.textContent.trim().slice(0, 40)}`);
  }
  return worst;
}"""


def test_the_kill_switch_works_from_the_keyboard_and_every_text_is_readable(
    session_as: Callable[..., Session],
) -> None:
    session = session_as("rita")
    page = session.page
    for name in PAGES:
        session.go(name)
        assert page.evaluate(CONTRAST) == [], f"text below 4.5:1 on {name}"
    session.go("overview")
    page.reload()  # the focus order from the document's start
    page.wait_for_selector("#kill-switch")
    order = []
    for _ in range(60):  # the focus order: skip link, the pages, log out, ..., the kill switch
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const e = document.activeElement; return {id: e.id, tag: e.tagName, text: e.textContent.trim(),"
            " outline: getComputedStyle(e).outlineStyle}; })()"
        )
        order.append(focused["text"][:20])
        assert focused["outline"] != "none", f"no visible focus on {focused}"
        if focused["id"] == "kill-switch":
            break
    else:
        raise AssertionError(f"the kill switch is not reachable with Tab: {order}")
    assert order[0] == "Skip to content" and order[1] == "Overview"
    assert focused["tag"] == "BUTTON"
    page.keyboard.press("Enter")
    page.wait_for_selector("dialog.dialog[open]")
    assert page.evaluate("document.activeElement.id") == "ks-reason"
    page.keyboard.press("Escape")  # cancelled: nothing halted, the focus back on the switch
    page.wait_for_selector("dialog.dialog", state="detached")
    assert page.evaluate("document.activeElement.id") == "kill-switch"
    assert header_state(session) == "ACTIVE"


def test_a_new_fill_is_on_screen_soon_after_its_event_on_the_bus(
    session_as: Callable[..., Session], desk: Desk, platform: Platform
) -> None:
    session = session_as("tom")
    page = session.page
    session.go("orders")
    # every row the page adds, with the time it was added (the browser's clock is this machine's)
    page.evaluate(
        """() => { window.__seen = {}; new MutationObserver((changes) => { for (const c of changes) for (const n of
        c.addedNodes) if (n.dataset && n.dataset.key && !window.__seen[n.dataset.key]) window.__seen[n.dataset.key] =
        Date.now(); }).observe(document.body, {childList: true, subtree: true}); }"""
    )
    delays = []
    with BusTail(platform) as bus:
        for _ in range(3):
            try:
                cid = submit_market_order(platform, desk.token("tom"))
            except NoFreshPrice as error:
                pytest.skip(f"no order can pass risk here: {error}")
            fill_id, on_bus_ms = bus.wait_for_fill(cid, 120)
            row = page.wait_for_selector(f'[data-table="fills"] tr[data-key="{fill_id}"]', timeout=GENEROUS_MS)
            assert cid in row.inner_text() and "MSFT" in row.inner_text()
            shown_ms = page.evaluate(f"window.__seen[{json.dumps(fill_id)}]")
            delays.append({"fill_id": fill_id, "client_order_id": cid, "delay_ms": shown_ms - on_bus_ms})
    session.shot("live-fill")
    REPORTS.mkdir(parents=True, exist_ok=True)
    figures = sorted(d["delay_ms"] for d in delays)
    (REPORTS / "fill-delay.json").write_text(
        json.dumps({"fills": delays, "max_ms": figures[-1], "median_ms": figures[len(figures) // 2]}, indent=2) + "\n"
    )


def test_a_lost_live_connection_says_so_and_comes_back(session_as: Callable[..., Session], platform: Platform) -> None:
    """The gateway itself goes away (stopped) and comes back (`up` starts it again): the page says it lost the
    stream, retries with growing waits, and is live again by itself, on the same session (it is kept in Redis)."""
    session = session_as("vera")
    page = session.page
    assert platform.process("gateway").stop()
    try:
        page.wait_for_selector('.live[data-live="reconnecting"]', timeout=GENEROUS_MS)
        session.shot("reconnecting")
        shown = set()  # the waits the page announces while the gateway is away: they grow (the backoff)
        for _ in range(70):
            text = page.inner_text(".live")
            if text.startswith("connection lost: reconnecting in "):
                shown.add(int(text.split(" in ")[1].split()[0]))
            time.sleep(0.1)
    finally:
        states = in_thread(platform.up, timeout_s=180)
    assert states["gateway"] == "SERVING"
    page.wait_for_selector('.live[data-live="live"]', timeout=60_000)
    assert len(shown) >= 2 and max(shown) > min(shown), f"the announced waits did not grow: {sorted(shown)}"


def test_a_viewer_neither_sees_nor_can_press_the_kill_switch(session_as: Callable[..., Session], desk: Desk) -> None:
    session = session_as("vera")
    page = session.page
    for name in PAGES:
        session.go(name)
        assert page.locator("#kill-switch, #request-resume").count() == 0
        assert "Halt trading" not in page.content()
    refused = desk.api(
        "vera", "POST", "/api/v1/risk/halt", json={"reason": "a viewer tries", "cancel_open_orders": True}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert desk.api("vera", "GET", "/api/v1/risk").json()["trading_state"] != "HALTED"


def _risk_service_state(platform: Platform, token: str) -> str:
    operator_grpc(platform)
    answer = run_async(
        rpc(
            platform.spec("risk").address,
            lambda ch: risk_pb2_grpc.RiskServiceStub(ch).GetTradingState(risk_pb2.GetTradingStateRequest()),
            token,
        )
    )
    return str(risk_pb2.TradingState.Name(answer.state))


def test_a_risk_officers_halt_changes_the_state_everywhere_and_resuming_takes_four_eyes(
    session_as: Callable[..., Session], desk: Desk, platform: Platform
) -> None:
    officer = session_as("rita")
    watcher = session_as("vera")
    watcher.go("risk")
    wait_for(lambda: header_state(officer) == "ACTIVE", 30, "the state shown")
    try:
        page = officer.page
        page.click("#kill-switch")
        dialog = page.locator("dialog.dialog")
        assert dialog.is_visible()
        dialog.locator("#ks-reason").fill("browser test: the kill switch")
        officer.shot("kill-switch-confirm")
        dialog.locator("button[type=submit]").click()
        page.wait_for_selector('[data-testid="trading-state"] [data-state="HALTED"]', timeout=GENEROUS_MS)
        # everywhere: the other user's open page (pushed), each of its pages, the API, the risk service
        watcher.page.wait_for_selector('[data-panel="risk-state"] [data-state="HALTED"]', timeout=GENEROUS_MS)
        for name in PAGES:
            watcher.go(name)
            assert header_state(watcher) == "HALTED", name
        assert desk.api("vera", "GET", "/api/v1/risk").json()["trading_state"] == "HALTED"
        assert desk.api("vera", "GET", "/api/v1/account").json()["trading_state"] == "HALTED"
        assert _risk_service_state(platform, desk.token("vera")) == "TRADING_STATE_HALTED"
        officer.shot("halted")
        # releasing it is a request: still halted until a second risk officer approves
        page.click("#request-resume")
        page.locator("dialog.dialog #ks-reason").fill("browser test: resume")
        page.locator("dialog.dialog button[type=submit]").click()
        page.wait_for_selector(".outcome:has-text('four eyes')", timeout=GENEROUS_MS)
        time.sleep(1)
        assert _risk_service_state(platform, desk.token("vera")) == "TRADING_STATE_HALTED"
        page.wait_for_selector("[data-change]", timeout=GENEROUS_MS)
        assert page.locator("[data-change] button").count() == 0  # rita cannot approve her own change
        second = session_as("rob")
        second.page.wait_for_selector("[data-change] button:has-text('Approve')", timeout=GENEROUS_MS)
        second.page.locator("[data-change] button:has-text('Approve')").first.click()
        watcher.page.wait_for_selector('[data-testid="trading-state"] [data-state="ACTIVE"]', timeout=GENEROUS_MS)
        assert _risk_service_state(platform, desk.token("vera")) == "TRADING_STATE_ACTIVE"
    finally:
        _resume(desk)


def _resume(desk: Desk) -> None:
    """Leave the platform trading whatever happened above (the other tests do not depend on this one)."""
    if desk.api("vera", "GET", "/api/v1/risk").json()["trading_state"] == "ACTIVE":
        return
    desk.api("rita", "POST", "/api/v1/risk/resume", json={"reason": "browser test clean-up"})
    for change in desk.api("rob", "GET", "/api/v1/risk/changes").json()["items"]:
        if change["requested_by"] == "user:rita":
            desk.api(
                "rob",
                "POST",
                f"/api/v1/risk/changes/{change['change_id']}/approve",
                json={"content_hash": change["content_hash"], "reason": "browser test clean-up"},
            )
