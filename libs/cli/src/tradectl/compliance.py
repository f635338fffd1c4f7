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
    retention_days: int = typer.Option(
        0,
        "--retention-days",
        envvar="TRADING_AUDIT__RETENTION_DAYS",
        help="archive sealed segments older than this; 0 = never",
    ),
    archive_target: str = typer.Option(
        "folder", "--archive-target", envvar="TRADING_AUDIT__ARCHIVE_TARGET", help="folder|s3"
    ),
    archive_dir: Path | None = typer.Option(
        None, "--archive-dir", envvar="TRADING_AUDIT__ARCHIVE_DIR", help="default: audit-archive beside the ledger"
    ),
    archive_bucket: str = typer.Option("", "--archive-bucket", envvar="TRADING_AUDIT__ARCHIVE_S3_BUCKET"),
) -> None:
    """Verify the ledger, build the report for [--from, --to), then apply the retention policy and report it."""
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"--out: {out} exists and is not a folder")
    if not ledger.is_dir():
        raise typer.BadParameter(f"--ledger: {ledger} is not a folder")
    from audit_service.archive import ArchiveError, ArchivePolicy, archive_sealed, verify_with_archive
    from audit_service.compliance import ReportError, build_report, checkpoint_rows, parse_time, write_report

    try:
        start_ns = parse_time(start, "--from")
        end_ns = parse_time(end, "--to", end=True)
    except ReportError as error:
        raise typer.BadParameter(str(error)) from None
    if end_ns <= start_ns:
        raise typer.BadParameter(f"--to ({end}) must be after --from ({start})")
    if archive_target not in ("folder", "s3"):
        raise typer.BadParameter(f"--archive-target: {archive_target!r} is not 'folder' or 's3'")
    archive_dir = archive_dir or ledger.parent / "audit-archive"
    # Segments archived before are part of the record: verified with the ledger (the anchor links them) and reported.
    result, entries = verify_with_archive(ledger, archive_dir)
    if not result.ok:
        console.print(
            f"[red]ledger FAILED verification[/red] after {result.entries_checked} entries; first bad entry: "
            f"{result.first_error}. No report written."
        )
        raise typer.Exit(1)
    checkpoints = [
        {**row, "segment": f"archive/{row['segment']}"} for row in checkpoint_rows(archive_dir) if archive_dir.is_dir()
    ] + checkpoint_rows(ledger)
    policy = ArchivePolicy(retention_days, archive_target, archive_dir, archive_bucket)
    built = build_report(entries, start_ns, end_ns, result, checkpoints)
    try:
        built.sections["retention"] = archive_sealed(ledger, policy, time.time_ns())
    except ArchiveError as error:
        console.print(f"[red]retention not applied[/red]: {error}. No report written.")
        raise typer.Exit(1) from None
    built.summary["rows"]["retention"] = len(built.sections["retention"])
    built.summary["retention"] = {
        "retention_days": retention_days,
        "target": archive_target,
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
