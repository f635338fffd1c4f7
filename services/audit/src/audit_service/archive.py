"""Retention and archival of the ledger: sealed segments older than the retention move out of the ledger folder, oldest
first, to an archive folder (S3 is a setting, refused with the reason: no bucket, or no S3 client installed); the
ledger keeps an anchor so what stays verifies, and the archive verifies with it (from the genesis to the anchor)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from trading.audit.v1 import audit_pb2

from audit_service.ledger import VerifyResult, read_entries, read_segment, verify

Row = dict[str, str]


class ArchiveError(ValueError):
    """A retention setting that cannot be applied; the message names the setting."""


@dataclass(frozen=True)
class ArchivePolicy:
    retention_days: int  # sealed segments whose last entry is older than this are archived; 0 = keep everything
    target: str = "folder"  # "folder" or "s3"
    folder: Path | None = None  # default: <ledger>/../audit-archive
    s3_bucket: str = ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def finish_interrupted(directory: Path, archive: Path) -> list[str]:
    """Remove from the ledger the sealed segments the anchor already covers whose archived copy is identical (a move
    stopped between writing the anchor and removing the segment)."""
    anchor = directory / "anchor.json"
    if not anchor.exists():
        return []
    through = json.loads(anchor.read_text())["last_sequence"]
    finished = []
    for path in sorted(directory.glob("segment-*.log")):
        seal_file, copy = path.with_suffix(".seal"), archive / path.name
        if not seal_file.exists() or json.loads(seal_file.read_text())["last_sequence"] > through:
            break
        if copy.exists() and _sha256(copy) == _sha256(path):
            path.unlink()
            seal_file.unlink()
            finished.append(path.name)
    return finished


def archive_sealed(directory: Path, policy: ArchivePolicy, now_ns: int) -> list[Row]:
    """Move the oldest sealed segments older than the retention out of the ledger, oldest first, stopping at the first
    younger one (what stays is a contiguous chain from the anchor). Each move copies the segment and its seal (the copy
    must match the seal's checkpoint hash), then writes the anchor, then removes them from the ledger; a move cut short
    after the anchor is finished by the next run (`finish_interrupted`)."""
    if policy.retention_days <= 0:
        return []
    if policy.target not in ("folder", "s3"):
        raise ArchiveError(f"archive target: {policy.target!r} is not 'folder' or 's3'")
    if policy.target == "s3":
        if not policy.s3_bucket:
            raise ArchiveError(
                "archive target s3 is not configured: set TRADING_AUDIT__ARCHIVE_S3_BUCKET (or --archive-bucket)"
            )
        raise ArchiveError(
            f"archive target s3 (bucket {policy.s3_bucket!r}): no S3 client is installed in this platform "
            "(boto3 is not in requirements.lock); use the folder target"
        )
    archive = policy.folder or directory.parent / "audit-archive"
    finish_interrupted(directory, archive)
    cutoff = now_ns - policy.retention_days * 24 * 3600 * 1_000_000_000
    moved: list[Row] = []
    for path in sorted(directory.glob("segment-*.log")):
        seal_file = path.with_suffix(".seal")
        if not seal_file.exists():
            break  # the open segment, and everything after it, stays
        last = None
        for _, entry, _problem in read_segment(path):
            last = entry if entry is not None else last
        if last is None or last.recorded_at >= cutoff:
            break
        seal = json.loads(seal_file.read_text())
        archive.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, archive / path.name)
        shutil.copy2(seal_file, archive / seal_file.name)
        if _sha256(archive / path.name) != seal["checkpoint_hash"]:
            raise ArchiveError(f"archive {archive}: the copy of {path.name} does not match its seal; nothing removed")
        (directory / "anchor.json").write_text(
            json.dumps(
                {"last_sequence": seal["last_sequence"], "last_hash": seal["last_hash"], "removed_through": path.name},
                indent=2,
            )
            + "\n"
        )
        path.unlink()
        seal_file.unlink()
        moved.append(
            {
                "segment": path.name,
                "action": "archived",
                "target": str(archive / path.name),
                "last_sequence": str(seal["last_sequence"]),
                "checkpoint_hash": seal["checkpoint_hash"],
            }
        )
    return moved


def verify_with_archive(directory: Path, archive: Path) -> tuple[VerifyResult, list[audit_pb2.LedgerEntry]]:
    """Verify the archive (from the genesis), then the ledger; the ledger's anchor must be the archive's last entry.
    Returns the combined result and every entry, oldest first. Without archived segments: the ledger alone."""
    archived = sorted(archive.glob("segment-*.log")) if archive.is_dir() else []
    if not archived:
        return verify(directory), list(read_entries(directory))
    old, live = verify(archive), verify(directory)
    errors = [f"archive {archive}: {e}" for e in old.errors] + live.errors
    old_entries = list(read_entries(archive))
    anchor = directory / "anchor.json"
    if old.ok and old_entries:
        data = json.loads(anchor.read_text()) if anchor.exists() else {}
        tail = old_entries[-1]
        if data.get("last_sequence") != tail.sequence or data.get("last_hash") != tail.hash:
            errors.append(
                f"archive {archive}: its last entry (sequence {tail.sequence}) is not the ledger's anchor "
                f"(sequence {data.get('last_sequence')}): segments are missing between the archive and the ledger"
            )
    result = VerifyResult(not errors, old.entries_checked + live.entries_checked, errors)
    return result, old_entries + list(read_entries(directory))
