"""Entry point of `tradectl`. Each command group lives in its own module; this file only wires them."""

from __future__ import annotations

import typer

from tradectl import agent, audit, auth, backtest, compliance, deploy, dev, dlq, k8s, ops, replay, stack, topics

app = typer.Typer(
    name="tradectl",
    help="Operate the RL trading platform: the dev stack, topics, services, risk controls, agents and the audit "
    "ledger.",
    no_args_is_help=True,
    add_completion=False,
)
stack.register(app)  # tradectl up, down, status
auth.register(app)  # tradectl login, logout; users, roles, apikeys (admin)
app.add_typer(dev.app, name="dev")
topics.register(app)  # tradectl topics, tradectl tail
ops.register(app)  # tradectl orders, positions, risk ...
agent.register(app)  # tradectl models list|show|promote|rollback, tradectl train
backtest.register(app)  # tradectl backtest: walk-forward evaluation against baselines
app.add_typer(audit.app, name="audit")
compliance.register(app)  # tradectl compliance report --from --to --out: the audit ledger as a compliance report
app.add_typer(deploy.app, name="deploy")  # tradectl deploy status|promote|rollback (blue-green)
app.add_typer(k8s.app, name="k8s")  # tradectl k8s topics: Strimzi KafkaTopics from the topic registry
app.add_typer(dlq.app, name="dlq")  # tradectl dlq list|show|redrive: dead letters, and redriving them after a fix
replay.register(app)  # tradectl replay --from --to: re-run a window through the engines, report what differs

if __name__ == "__main__":
    app()
