"""report.json and a self-contained report.html of a walk-forward study: interactive plotly charts (zoom, hover) whose
plotly.js is embedded in the file from the pinned plotly package (no CDN, works offline)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

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


WEIGHTS_EVERY = 5
"""The weights charts plot every 5th day (27 years x 21 symbols at daily resolution would make the file heavy)."""


class _Charts:
    """Plotly figures as HTML fragments; plotly.js (the pinned package's own copy) is embedded once, in the first."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, figure: Any) -> str:
        figure.update_layout(
            template="plotly_white",
            height=figure.layout.height or 380,
            hovermode="x unified",
            margin={"l": 50, "r": 20, "t": 40, "b": 40},
        )
        fragment = figure.to_html(full_html=False, include_plotlyjs=self.first, config={"displaylogo": False})
        self.first = False
        return str(fragment)


def _plots(outcome: WalkForwardResult) -> dict[str, str]:
    """Interactive (zoom, hover) charts: equity, drawdowns, rolling_sharpe (every strategy, candidates drawn
    thicker), weights_<name> (each candidate's weights over time next to equal weight's), per_window (test Sharpe per
    window and strategy) and costs (turnover and cost drag per strategy)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    chart = _Charts()
    stitched = {name: outcome.stitched(name) for name in outcome.results}
    candidates = outcome.candidates
    days = next(iter(stitched.values())).dates.astype("datetime64[D]").astype(str)
    plots = {}

    def lines(values_of: Any, title: str, log: bool = False) -> str:
        figure = go.Figure()
        for name, result in stitched.items():
            x, y = values_of(result)
            figure.add_trace(
                go.Scatter(x=x, y=y, name=name, mode="lines", line={"width": 2.4 if name in candidates else 1})
            )
        figure.update_layout(title=title)
        if log:
            figure.update_yaxes(type="log")
        return chart(figure)

    plots["equity"] = lines(
        lambda r: (days, metrics.equity_curve(r.returns)),
        "Equity (out-of-sample test windows stitched, net of costs, log scale)",
        log=True,
    )
    plots["drawdowns"] = lines(lambda r: (days, -metrics.drawdowns(r.returns)), "Drawdown from running peak")

    def rolling(result: Any) -> tuple[Any, Any]:
        r = result.returns
        if len(r) <= ROLLING_DAYS:
            return [], []
        values = [metrics.sharpe(r[i - ROLLING_DAYS : i]) for i in range(ROLLING_DAYS, len(r) + 1)]
        return days[ROLLING_DAYS - 1 :], values

    plots["rolling_sharpe"] = lines(rolling, f"Rolling {ROLLING_DAYS}-day Sharpe")
    symbols = list(outcome.config.symbols)
    sampled = slice(None, None, WEIGHTS_EVERY)
    reference = "equal_weight_monthly"
    for name in candidates:
        shown = [name] + ([reference] if reference in stitched else [])
        figure = make_subplots(rows=1, cols=len(shown), shared_yaxes=True, subplot_titles=shown)
        for column, strategy in enumerate(shown, start=1):
            weights = stitched[strategy].weights[sampled]
            for k, symbol in enumerate(symbols):
                figure.add_trace(
                    go.Scatter(
                        x=days[sampled],
                        y=weights[:, k],
                        name=symbol,
                        stackgroup=f"s{column}",
                        mode="none",
                        legendgroup=symbol,
                        showlegend=column == 1,
                    ),
                    row=1,
                    col=column,
                )
        figure.update_yaxes(range=[0, 1])
        figure.update_layout(title=f"Weights held (every {WEIGHTS_EVERY}th day; the rest to 1 is cash)", height=420)
        plots[f"weights_{name}"] = chart(figure)
    labels = [f"{w.index}" for w in outcome.windows]
    figure = go.Figure()
    for name in outcome.results:
        figure.add_trace(go.Bar(x=labels, y=[metrics.sharpe(p.returns) for p in outcome.results[name]], name=name))
    figure.update_layout(title="Test Sharpe per window", barmode="group", xaxis_title="window")
    plots["per_window"] = chart(figure)
    figure = make_subplots(rows=1, cols=2, subplot_titles=["turnover / yr", "cost drag / yr"])
    names = list(stitched)
    figure.add_trace(
        go.Bar(x=names, y=[metrics.annual_turnover(r.turnover) for r in stitched.values()], name="turnover"),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Bar(x=names, y=[metrics.annual_cost_drag(r.costs) for r in stitched.values()], name="cost drag"),
        row=1,
        col=2,
    )
    figure.update_yaxes(tickformat=".2%", row=1, col=2)
    figure.update_layout(title="Turnover and cost drag (out of sample)", showlegend=False, hovermode="closest")
    plots["costs"] = chart(figure)
    return plots


def _per_window_table(figures: dict[str, Any]) -> str:
    names = list(figures["strategies"])
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for i, window in enumerate(figures["windows"]):
        cells = "".join(f"<td>{figures['strategies'][n]['windows'][i]['sharpe']:.2f}</td>" for n in names)
        rows.append(f"<tr><td>{window['index']}</td><td>{window['test'][0]} .. {window['test'][1]}</td>{cells}</tr>")
    return f"<table><tr><th>#</th><th>test</th>{head}</tr>{''.join(rows)}</table>"


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


def _tuning(figures: dict[str, Any]) -> str:
    tuning = figures.get("tuning")
    if not tuning:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(json.dumps(t['changes']))}</td><td>{t['validate_sharpe']:.2f}</td>"
        f"<td>{t['validate_total_return']:.2%}</td><td>{t['timesteps']:,}</td><td>{t['seconds']:.0f}</td></tr>"
        for t in tuning["trials"]
    )
    window = tuning.get("window", {})
    return (
        f"<h2>Every agent variant tried (Ray Tune, validation only)</h2><p>{len(tuning['trials'])} configurations, "
        f"trained on {html.escape(' .. '.join(window.get('train', [])))} and scored on the validation year "
        f"{html.escape(' .. '.join(window.get('validate', [])))} only, before every test year; the best "
        f"(<code>{html.escape(json.dumps(tuning['best']))}</code>) is traded. All of them count in the deflated "
        "Sharpe.</p><table><tr><th>changes</th><th>validate Sharpe</th><th>validate return</th><th>env steps</th>"
        f"<th>seconds</th></tr>{rows}</table>"
    )


def write_report(outcome: WalkForwardResult, out_dir: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write report.json and report.html into out_dir; return the figures (`extra`, e.g. the agent's tuning trials,
    is added to report.json as is)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {**report_figures(outcome), **(extra or {})}
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
    weights = "".join(f"<h3>{html.escape(name)}</h3>{plots[f'weights_{name}']}" for name in figures["candidates"])
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
<h2>Is a candidate better?</h2>{comparisons}{_tuning(figures)}
<h2>Equity curves</h2>{plots["equity"]}
<h2>Drawdowns</h2>{plots["drawdowns"]}
<h2>Turnover and cost drag</h2>{plots["costs"]}
<h2>Weights over time, next to equal weight's</h2>{weights}
<h2>Rolling Sharpe</h2>{plots["rolling_sharpe"]}
<h2>Per window: test Sharpe of every strategy</h2>{plots["per_window"]}{_per_window_table(figures)}
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
