"""The dashboard's first load in Chromium: from navigation start to the first chart drawn.

The platform runs as `make up` runs it (tests/browser/desk.py). A logged-in viewer opens /app/overview in a fresh
browser context each run (empty cache: every asset is fetched, the refresh token is exchanged, the API is read, the
equity curve drawn). The figure is the `first-chart` performance mark the app sets when its first chart is drawn
with data, relative to the navigation's start (performance.timeOrigin); the navigation's DOMContentLoaded and load
are kept beside it, and the median start and end of each request (document, assets, API reads) to show where
the time goes. Then the same over reloads of one context (warm cache). Budget: p90 of the cold loads at most
1000 ms. -> benchmarks/results/dashboard.json

python -m tests.benchmarks bench_dashboard [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.stats import write_results
from tests.browser.desk import Desk, chromium, running_platform

BUDGET_MS = 1000.0
TIMING = """() => {
  const mark = performance.getEntriesByName("first-chart")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  return {first_chart_ms: mark ? mark.startTime : null, dom_content_loaded_ms: nav.domContentLoadedEventEnd,
          load_ms: nav.loadEventEnd, transfer_bytes: resources.reduce((s, r) => s + (r.transferSize || 0),
          nav.transferSize || 0),
          // where the time goes: when each request started and ended, after the navigation's start
          requests: [{path: "document", start_ms: nav.startTime, end_ms: nav.responseEnd},
                     ...resources.map((r) => ({path: new URL(r.name).pathname, start_ms: r.startTime,
                                               end_ms: r.responseEnd}))]};
}"""


def summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "runs": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p90_ms": round(float(np.percentile(a, 90)), 1),
        "max_ms": round(float(a.max()), 1),
        "mean_ms": round(float(a.mean()), 1),
    }


def timeline(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The median start and end of each request path over the runs (the first of a path in a run), by start."""
    by_path: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        seen = set()
        for request in run["requests"]:
            if request["path"] not in seen:
                seen.add(request["path"])
                by_path.setdefault(request["path"], []).append((request["start_ms"], request["end_ms"]))
    rows = [
        {
            "path": path,
            "runs": len(spans),
            "start_p50_ms": round(float(np.median([s for s, _ in spans])), 1),
            "end_p50_ms": round(float(np.median([e for _, e in spans])), 1),
        }
        for path, spans in by_path.items()
    ]
    return sorted(rows, key=lambda row: row["start_p50_ms"])


def load(page: Any, url: str) -> dict[str, Any]:
    page.goto(f"{url}/app/overview")
    page.wait_for_function("() => performance.getEntriesByName('first-chart').length > 0", timeout=30_000)
    page.wait_for_load_state("load")
    return dict(page.evaluate(TIMING))


def measure(url: str, refresh_token: str, runs: int, executable: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            token = refresh_token
            for run in range(runs + 1):  # the first is the gateway's first answers (imports, caches): dropped
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                # a logged-in tab: the refresh token in sessionStorage before the app's script runs
                context.add_init_script(
                    f"if (!sessionStorage.getItem('trading.refresh_token')) "
                    f"sessionStorage.setItem('trading.refresh_token', {json.dumps(token)});"
                )
                page = context.new_page()
                timing = load(page, url)
                if run:
                    cold.append(timing)
                for _ in range(3 if run else 0):
                    page.reload()
                    page.wait_for_function(
                        "() => performance.getEntriesByName('first-chart').length > 0", timeout=30_000
                    )
                    page.wait_for_load_state("load")
                    warm.append(dict(page.evaluate(TIMING)))
                token = page.evaluate("sessionStorage.getItem('trading.refresh_token')")  # rotated at each use
                context.close()
        finally:
            browser.close()
    first = [r["first_chart_ms"] for r in cold]
    return {
        "cold": {
            "first_chart": summary(first),
            "dom_content_loaded": summary([r["dom_content_loaded_ms"] for r in cold]),
            "load": summary([r["load_ms"] for r in cold]),
            "transfer_bytes": int(np.median([r["transfer_bytes"] for r in cold])),
            "requests": timeline(cold),
        },
        "warm": {"first_chart": summary([r["first_chart_ms"] for r in warm])},
        "budget_ms": BUDGET_MS,
        "within_budget": bool(np.percentile(first, 90) <= BUDGET_MS),
        "setup": "the whole platform as make up runs it; headless Chromium on this machine; fresh context per cold run",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_dashboard")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv or [])
    executable = chromium()
    if executable is None:
        raise RuntimeError("no Chromium: install Debian's chromium package or set TRADING_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp, running_platform(Path(tmp)) as platform:
        desk = Desk.bootstrap(platform)
        figures = measure(platform.gateway_url, desk.login("vera")["refresh_token"], args.runs, executable)
        figures["chromium"] = executable
    write_results("dashboard", figures)


if __name__ == "__main__":
    main()
