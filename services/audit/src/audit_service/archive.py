"""Retention and archival of the ledger: sealed segments older than the retention move out of the ledger folder, oldest
first, to an archive (a folder, or an S3 bucket: AWS S3 or any S3-compatible store); each copy is read back and must
match its seal (size and checkpoint hash) before the ledger lets go of it. The ledger keeps an anchor so what stays
verifies, and the archive verifies with it (from the genesis to the anchor)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from trading.audit.v1 import audit_pb2

from audit_service.config import AuditConfig
from audit_service.ledger import VerifyResult, read_entries, read_segment, verify

Row = dict[str, str]
T = TypeVar("T")


class ArchiveError(ValueError):
    """Retention could not be applied (the archive refused, did not answer, or holds something else); the message
    says where and what, and nothing was removed from the ledger that the archive does not hold."""


class Archive(Protocol):
    def where(self, name: str) -> str: ...

    def read(self, name: str) -> bytes | None: ...

    def write(self, name: str, data: bytes, metadata: dict[str, str]) -> None: ...

    def local(self) -> AbstractContextManager[Path]: ...  # a folder holding every archived segment and seal


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FolderArchive:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def where(self, name: str) -> str:
        return str(self.folder / name)

    def read(self, name: str) -> bytes | None:
        path = self.folder / name
        return path.read_bytes() if path.exists() else None

    def write(self, name: str, data: bytes, metadata: dict[str, str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f".{name}.part"
        with part.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        part.replace(self.folder / name)

    @contextmanager
    def local(self) -> Iterator[Path]:
        yield self.folder


class S3Archive:
    """Segments and seals as objects `<prefix>/<name>` in a bucket, through boto3 with the credentials given (from
    Vault); errors name the bucket, the object and S3's error code, never a credential."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix

    @classmethod
    def from_config(cls, config: AuditConfig) -> S3Archive:
        import boto3
        from botocore.config import Config

        assert config.archive_s3_access_key_id and config.archive_s3_secret_access_key  # AuditConfig checks it
        endpoint = config.archive_s3_endpoint_url or None
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=config.archive_s3_region,
            aws_access_key_id=config.archive_s3_access_key_id.get_secret_value(),
            aws_secret_access_key=config.archive_s3_secret_access_key.get_secret_value(),
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                # S3-compatible stores are reached by path (http://host:port/bucket/key), AWS by virtual host.
                s3={"addressing_style": "path" if endpoint else "auto"},
            ),
        )
        return cls(client, config.archive_s3_bucket, config.archive_s3_prefix)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def where(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def _call(self, action: str, name: str, call: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as error:
            detail = error.response.get("Error", {})
            raise ArchiveError(
                f"archive {self.where(name)}: {action} refused: {detail.get('Code', '?')}: {detail.get('Message', '')}"
            ) from None
        except BotoCoreError as error:
            raise ArchiveError(f"archive {self.where(name)}: {action} failed: {error}") from None

    def read(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        def get() -> bytes | None:
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            return bytes(answer["Body"].read())

        return self._call("read", name, get)

    def write(self, name: str, data: bytes, metadata: dict[str, str]) -> None:
        self._call(
            "write",
            name,
            lambda: self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data, Metadata=metadata),
        )

    def names(self) -> list[str]:
        start = self.key("")

        def listing() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            return [item["Key"][len(start) :] for page in pages for item in page.get("Contents", [])]

        found = self._call("list", "", listing)
        return sorted(n for n in found if n.startswith("segment-") and "/" not in n)

    @contextmanager
    def local(self) -> Iterator[Path]:
        """The archived segments and seals downloaded into a temporary folder (removed afterwards)."""
        with tempfile.TemporaryDirectory(prefix="audit-archive-") as folder:
            for name in self.names():
                data = self.read(name)
                if data is not None:
                    (Path(folder) / name).write_bytes(data)
            yield Path(folder)


def open_archive(config: AuditConfig, ledger: Path) -> FolderArchive | S3Archive:
    """The archive the settings name: the folder (default: audit-archive beside the ledger) or the S3 bucket."""
    if config.archive_target == "s3":
        return S3Archive.from_config(config)
    return FolderArchive(config.archive_dir or ledger.parent / "audit-archive")


def finish_interrupted(directory: Path, archive: Archive) -> list[str]:
    """Remove from the ledger the sealed segments the anchor already covers whose archived copy is identical (a move
    stopped between writing the anchor and removing the segment)."""
    anchor = directory / "anchor.json"
    if not anchor.exists():
        return []
    through = json.loads(anchor.read_text())["last_sequence"]
    finished = []
    for path in sorted(directory.glob("segment-*.log")):
        seal_file = path.with_suffix(".seal")
        if not seal_file.exists() or json.loads(seal_file.read_text())["last_sequence"] > through:
            break
        copy = archive.read(path.name)
        if copy is not None and _sha256(copy) == _sha256(path.read_bytes()):
            path.unlink()
            seal_file.unlink()
            finished.append(path.name)
    return finished


def _store(archive: Archive, name: str, data: bytes, metadata: dict[str, str]) -> bytes:
    """Write one file unless the archive already holds exactly it; return what the archive gives back."""
    held = archive.read(name)
    if held is not None and held != data:
        raise ArchiveError(
            f"archive {archive.where(name)} already holds a different {name}: nothing removed (is the archive "
            "shared with another ledger?)"
        )
    if held is None:
        archive.write(name, data, metadata)
    back = archive.read(name)
    if back is None:
        raise ArchiveError(f"archive {archive.where(name)}: not found right after writing it; nothing removed")
    return back


def archive_sealed(directory: Path, archive: Archive, retention_days: int, now_ns: int) -> list[Row]:
    """Move the oldest sealed segments older than the retention out of the ledger, oldest first, stopping at the first
    younger one (what stays is a contiguous chain from the anchor). Each move writes the segment and its seal, reads
    both back (the segment's size and SHA-256 must match the file and its seal's checkpoint hash), then writes the
    anchor, then removes them from the ledger; a move cut short after the anchor is finished by the next run
    (`finish_interrupted`). Returns one row per segment moved: where it went and what was read back."""
    if retention_days <= 0:
        return []
    finish_interrupted(directory, archive)
    cutoff = now_ns - retention_days * 24 * 3600 * 1_000_000_000
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
        data = path.read_bytes()
        if _sha256(data) != seal["checkpoint_hash"]:
            raise ArchiveError(f"ledger {path}: does not match its seal's checkpoint hash; nothing archived")
        metadata = {"checkpoint-hash": seal["checkpoint_hash"], "last-sequence": str(seal["last_sequence"])}
        back = _store(archive, path.name, data, metadata)
        if len(back) != len(data) or _sha256(back) != seal["checkpoint_hash"]:
            raise ArchiveError(
                f"archive {archive.where(path.name)}: read back {len(back)} bytes, sha256 {_sha256(back)}; the "
                f"segment is {len(data)} bytes, sealed {seal['checkpoint_hash']}: nothing removed"
            )
        if _store(archive, seal_file.name, seal_file.read_bytes(), {}) != seal_file.read_bytes():
            raise ArchiveError(f"archive {archive.where(seal_file.name)}: the seal read back differs; nothing removed")
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
                "target": archive.where(path.name),
                "last_sequence": str(seal["last_sequence"]),
                "checkpoint_hash": seal["checkpoint_hash"],
                "bytes": str(len(back)),
                "read_back_sha256": _sha256(back),
            }
        )
    return moved


def verify_with_archive(
    directory: Path, archive: Path, name: str = ""
) -> tuple[VerifyResult, list[audit_pb2.LedgerEntry]]:
    """Verify the archive (from the genesis), then the ledger; the ledger's anchor must be the archive's last entry.
    Returns the combined result and every entry, oldest first. Without archived segments: the ledger alone. `name`
    is what errors call the archive (an S3 archive is verified from a downloaded copy); default: its folder."""
    archived = sorted(archive.glob("segment-*.log")) if archive.is_dir() else []
    if not archived:
        return verify(directory), list(read_entries(directory))
    old, live = verify(archive), verify(directory)
    name = name or str(archive)
    errors = [f"archive {name}: {e}" for e in old.errors] + live.errors
    old_entries = list(read_entries(archive))
    anchor = directory / "anchor.json"
    if old.ok and old_entries:
        data = json.loads(anchor.read_text()) if anchor.exists() else {}
        tail = old_entries[-1]
        if data.get("last_sequence") != tail.sequence or data.get("last_hash") != tail.hash:
            errors.append(
                f"archive {name}: its last entry (sequence {tail.sequence}) is not the ledger's anchor "
                f"(sequence {data.get('last_sequence')}): segments are missing between the archive and the ledger"
            )
    result = VerifyResult(not errors, old.entries_checked + live.entries_checked, errors)
    return result, old_entries + list(read_entries(directory))
