"""tradectl compliance report: the period's blotter, order trails, risk, controls, access, changes and best execution,
built from the audit ledger (never from the topics) after the ledger verifies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Compliance reports from the audit ledger.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)  # messages stay on one line (logs, tests)


@app.command()
def report(
    start: str = typer.Option(..., "--from", help="first day (YYYY-MM-DD, UTC) or ISO date-time, inclusive"),
    end: str = typer.Option(..., "--to", help="last day (YYYY-MM-DD, the whole day) or ISO date-time, exclusive"),
    out: Path = typer.Option(..., "--out", help="folder for report.html, report.json and one CSV per section"),
    ledger: Path = typer.Option(Path(".run/audit-ledger"), "--ledger", help="the ledger folder"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
    retention_days: int | None = typer.Option(
        None,
        "--retention-days",
        help="archive sealed segments older than this; 0 = never [TRADING_AUDIT__RETENTION_DAYS]",
    ),
    archive_target: str | None = typer.Option(
        None, "--archive-target", help="folder|s3 [TRADING_AUDIT__ARCHIVE_TARGET]"
    ),
    archive_dir: Path | None = typer.Option(
        None,
        "--archive-dir",
        help="the folder target; default: audit-archive beside the ledger [TRADING_AUDIT__ARCHIVE_DIR]",
    ),
    archive_bucket: str | None = typer.Option(
        None, "--archive-bucket", help="the s3 target's bucket [TRADING_AUDIT__ARCHIVE_S3_BUCKET]"
    ),
) -> None:
    """Verify the ledger (and what was archived), build the report for [--from, --to), then apply the retention
    policy and report where each segment went. The archive settings are TRADING_AUDIT__* (services/audit/README.md);
    a flag overrides its variable. S3 credentials come from Vault (TRADING_VAULT__*), never from a flag."""
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"--out: {out} exists and is not a folder")
    if not ledger.is_dir():
        raise typer.BadParameter(f"--ledger: {ledger} is not a folder")
    from audit_service.archive import ArchiveError, archive_sealed, open_archive, verify_with_archive
    from audit_service.compliance import ReportError, build_report, checkpoint_rows, parse_time, write_report
    from audit_service.config import ArchiveSettings
    from trading_platform.settings import ConfigError, load_settings

    try:
        start_ns = parse_time(start, "--from")
        end_ns = parse_time(end, "--to", end=True)
    except ReportError as error:
        raise typer.BadParameter(str(error)) from None
    if end_ns <= start_ns:
        raise typer.BadParameter(f"--to ({end}) must be after --from ({start})")
    flags = {
        "retention_days": retention_days,
        "archive_target": archive_target,
        "archive_dir": archive_dir,
        "archive_s3_bucket": archive_bucket,
    }
    try:
        config = load_settings(ArchiveSettings, audit={k: v for k, v in flags.items() if v is not None}).audit
    except ConfigError as error:
        console.print("[red]invalid archive settings[/red]: " + "; ".join(error.problems) + ". Nothing read or moved.")
        raise typer.Exit(2) from None
    try:
        archive = open_archive(config, ledger)
        # Segments archived before are part of the record: verified with the ledger (the anchor links them) and
        # reported (an S3 archive from a downloaded copy).
        with archive.local() as archive_dir:
            result, entries = verify_with_archive(ledger, archive_dir, archive.where(""))
            archived = checkpoint_rows(archive_dir) if archive_dir.is_dir() else []
    except ArchiveError as error:
        console.print(f"[red]the archive could not be read[/red]: {error}. No report written.")
        raise typer.Exit(1) from None
    if not result.ok:
        console.print(
            f"[red]ledger FAILED verification[/red] after {result.entries_checked} entries; first bad entry: "
            f"{result.first_error}. No report written."
        )
        raise typer.Exit(1)
    checkpoints = [{**row, "segment": f"archive/{row['segment']}"} for row in archived] + checkpoint_rows(ledger)
    built = build_report(entries, start_ns, end_ns, result, checkpoints)
    try:
        built.sections["retention"] = archive_sealed(ledger, archive, config.retention_days, time.time_ns())
    except ArchiveError as error:
        console.print(f"[red]retention not applied[/red]: {error}. No report written.")
        raise typer.Exit(1) from None
    built.summary["rows"]["retention"] = len(built.sections["retention"])
    built.summary["retention"] = {
        "retention_days": config.retention_days,
        "target": config.archive_target,
        "archive": archive.where(""),
        "archived_segments": len(built.sections["retention"]),
    }
    written = write_report(built, out)
    if built.empty:
        console.print(f"[yellow]{built.summary['note']}[/yellow]: an empty report was written")
    console.print(f"report written to {out} ({len(written)} files); ledger OK ({result.entries_checked} entries)")
    if as_json:
        print(json.dumps(built.summary))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="compliance")
