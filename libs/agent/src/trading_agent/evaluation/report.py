"""report.json and a self-contained report.html (plots inlined as base64 PNG) of a walk-forward study."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot
import matplotlib.pyplot as plt

from trading_agent.evaluation import metrics
from trading_agent.evaluation.walkforward import AGENT, CANDIDATE, WalkForwardResult, report_figures

ROLLING_DAYS = 126
STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child{text-align:left}"
    "tr.candidate{background:#eef5ff;font-weight:bold}"
    ".note{background:#fff6e0;padding:.6em 1em;border-left:4px solid #e0a000}img{max-width:100%}"
)
SHOWN = [
    ("annualised_return", "Ann. return", "{:.2%}"),
    ("volatility", "Volatility", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("sortino", "Sortino", "{:.2f}"),
    ("calmar", "Calmar", "{:.2f}"),
    ("max_drawdown", "Max DD", "{:.2%}"),
    ("max_drawdown_duration_days", "DD days", "{:d}"),
    ("var_95", "VaR 95", "{:.2%}"),
    ("cvar_99", "CVaR 99", "{:.2%}"),
    ("annual_turnover", "Turnover/yr", "{:.1f}"),
    ("annual_cost_drag", "Cost drag/yr", "{:.2%}"),
]


def _png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(outcome: WalkForwardResult) -> dict[str, str]:
    """equity, drawdowns, rolling_sharpe (every strategy, candidates drawn thicker) and weights_<name> (one stacked
    plot of the weights held per candidate: ridge_features and, when evaluated, rl_agent)."""
    stitched = {name: outcome.stitched(name) for name in outcome.results}
    candidates = outcome.candidates
    days = next(iter(stitched.values())).dates.astype("datetime64[D]").astype(object)
    plots = {}
    figure, axis = plt.subplots(figsize=(10, 4))
    for name, result in stitched.items():
        axis.plot(days, metrics.equity_curve(result.returns), label=name, linewidth=2.2 if name in candidates else 1)
    axis.set_yscale("log")
    axis.set_title("Equity (out-of-sample test windows stitched, net of costs, log scale)")
    axis.legend(fontsize=8)
    plots["equity"] = _png(figure)
    figure, axis = plt.subplots(figsize=(10, 3))
    for name, result in stitched.items():
        axis.plot(days, metrics.drawdowns(result.returns), label=name, linewidth=1.6 if name in candidates else 0.8)
    axis.set_title("Drawdown from running peak")
    axis.legend(fontsize=8)
    plots["drawdowns"] = _png(figure)
    for name in candidates:
        figure, axis = plt.subplots(figsize=(10, 3.5))
        axis.stackplot(days, stitched[name].weights.T, labels=list(outcome.config.symbols))
        axis.set_ylim(0, 1)
        axis.set_title(f"{name}: weights held (white = cash)")
        axis.legend(fontsize=6, ncol=10, loc="upper center", bbox_to_anchor=(0.5, -0.12))
        plots[f"weights_{name}"] = _png(figure)
    figure, axis = plt.subplots(figsize=(10, 3))
    for name, result in stitched.items():
        r = result.returns
        if len(r) > ROLLING_DAYS:
            rolling = [metrics.sharpe(r[i - ROLLING_DAYS : i]) for i in range(ROLLING_DAYS, len(r) + 1)]
            axis.plot(days[ROLLING_DAYS - 1 :], rolling, label=name, linewidth=1.6 if name in candidates else 0.8)
    axis.axhline(0, color="black", linewidth=0.5)
    axis.set_title(f"Rolling {ROLLING_DAYS}-day Sharpe")
    axis.legend(fontsize=8)
    plots["rolling_sharpe"] = _png(figure)
    return plots


def _table(figures: dict[str, Any]) -> str:
    head = "".join(f"<th>{label}</th>" for _, label, _ in SHOWN)
    rows = []
    for name, values in figures["strategies"].items():
        oos = values["out_of_sample"]
        cells = "".join(f"<td>{fmt.format(oos[key])}</td>" for key, _, fmt in SHOWN)
        style = ' class="candidate"' if name in figures["candidates"] else ""
        rows.append(f"<tr{style}><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table><tr><th>Strategy</th>{head}</tr>{''.join(rows)}</table>"


def _comparisons(candidate: str, differences: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{c['difference']:+.2f}</td>"
        f"<td>[{c['lower']:+.2f}, {c['upper']:+.2f}]</td>"
        f"<td>{'yes' if c['lower'] > 0 else ('worse' if c['upper'] < 0 else 'no')}</td></tr>"
        for name, c in differences.items()
    )
    return (
        f"<table><tr><th>vs</th><th>Sharpe({html.escape(candidate)}) - Sharpe(vs)</th>"
        f"<th>95% stationary-bootstrap CI</th><th>significantly better?</th></tr>{rows}</table>"
    )


def _agent_windows(figures: dict[str, Any]) -> str:
    if AGENT not in figures["candidates"]:
        return ""
    rows = "".join(
        f"<tr><td>{a['window']}</td><td>{a['seed']}</td><td>{a['iterations']}</td><td>{a['timesteps']:,}</td>"
        f"<td>{a['validate_env']['sharpe']:.2f}</td><td>{a['validate_backtest']['sharpe']:.2f}</td>"
        f"<td>{s['sharpe']:.2f}</td><td>{s['annualised_return']:.2%}</td></tr>"
        for a, s in zip(figures["agent_windows"], figures["strategies"][AGENT]["windows"], strict=True)
    )
    return (
        f"<h2>{AGENT} per window</h2><p>Trained from scratch on each train window only; the validation figures are "
        "reported, not used to choose anything.</p><table><tr><th>#</th><th>seed</th><th>iterations</th>"
        "<th>env steps</th><th>validate Sharpe (env, mean over symbols)</th><th>validate Sharpe (backtest)</th>"
        f"<th>test Sharpe</th><th>test ann. return</th></tr>{rows}</table>"
    )


def write_report(outcome: WalkForwardResult, out_dir: Path) -> dict[str, Any]:
    """Write report.json and report.html into out_dir; return the figures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = report_figures(outcome)
    (out_dir / "report.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    plots = _plots(outcome)
    deflated = figures["deflated_sharpe"]
    deflated_text = "; ".join(
        f"<code>{html.escape(name)}</code> <b>{value:.3f}</b>" for name, value in deflated["by_candidate"].items()
    )
    differences = {CANDIDATE: figures["sharpe_difference_vs_candidate"]}
    if AGENT in figures["candidates"]:
        differences[AGENT] = figures["sharpe_difference_vs_rl_agent"]
    comparisons = "".join(
        f"<h3>{html.escape(name)}</h3>{_comparisons(name, values)}" for name, values in differences.items()
    )
    weights = "".join(
        f'<h3>{html.escape(name)}</h3><img src="data:image/png;base64,{plots[f"weights_{name}"]}">'
        for name in figures["candidates"]
    )
    windows = figures["windows"]
    candidate_oos = figures["strategies"][CANDIDATE]["out_of_sample"]
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>Backtest {html.escape(figures["name"])}</title>
<style>{STYLE}</style></head><body>
<h1>Walk-forward backtest: {html.escape(figures["name"])}</h1>
<p>{len(windows)} test windows from {windows[0]["test"][0]} to {windows[-1]["test"][1]}
({candidate_oos["days"]} out-of-sample days), {len(figures["config"]["symbols"])} symbols
({html.escape(figures["generated_from"]["data"])}). Costs per traded notional: commission
{figures["cost_model_bps"]["commission"]} bps + half spread {figures["cost_model_bps"]["half_spread"]} bps + slippage
{figures["cost_model_bps"]["slippage"]} bps, charged to every strategy alike. Bootstrap seed {
        figures["seeds"]["bootstrap"]
    }.</p>
<p class="note"><b>RL agent:</b> {html.escape(figures["agent"])}.<br>
<b>Candidate</b> <code>{
        CANDIDATE
    }</code> is a learned linear policy (not RL), refitted on each train window and tuned on
each validate window. <b>Configurations tried: {figures["configurations_tried"]}</b> (the ridge grid{
        " + the RL agent" if AGENT in figures["candidates"] else ""
    }{" + prior" if figures["config"]["prior_configurations"] else ""}); deflated Sharpe ratio
(probability that the true Sharpe beats the best of that many skill-less tries): {deflated_text}.</p>
<h2>Out-of-sample figures (test windows stitched)</h2>{_table(figures)}
<h2>Is a candidate better?</h2>{comparisons}
<h2>Equity curves</h2><img src="data:image/png;base64,{plots["equity"]}">
<h2>Drawdowns</h2><img src="data:image/png;base64,{plots["drawdowns"]}">
<h2>Weights over time</h2>{weights}
<h2>Rolling Sharpe</h2><img src="data:image/png;base64,{plots["rolling_sharpe"]}">
<h2>Windows</h2><table><tr><th>#</th><th>train</th><th>validate</th><th>test</th><th>chosen penalty</th>
<th>rebalance days</th><th>{CANDIDATE} test Sharpe</th></tr>
{
        "".join(
            f"<tr><td>{w['index']}</td><td>{w['train'][0]} .. {w['train'][1]}</td><td>{w['validate'][0]} .. "
            f"{w['validate'][1]}</td><td>{w['test'][0]} .. {w['test'][1]}</td><td>{c['penalty']:g}</td>"
            f"<td>{c['rebalance_days']}</td><td>{s['sharpe']:.2f}</td></tr>"
            for w, c, s in zip(
                windows, figures["candidate_choices"], figures["strategies"][CANDIDATE]["windows"], strict=True
            )
        )
    }</table>
{_agent_windows(figures)}
<p>Every figure, seed and model version is in report.json next to this file.</p></body></html>
"""
    (out_dir / "report.html").write_text(body)
    return figures
