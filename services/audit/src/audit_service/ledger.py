"""The tamper-evident ledger: hash-chained, append-only segments on disk.

Each entry is a trading.audit.v1.LedgerEntry, written length-prefixed; its hash is SHA-256 over the previous entry's
hash and the entry's own bytes (with the hash field empty), so changing, removing or reordering any entry breaks every
hash after it. A segment rolls after `entries_per_segment` entries and is sealed: a `.seal` file records its first and
last sequence, its last hash and a checkpoint hash over the whole segment file. Retention deletes the oldest sealed
segments beyond `keep_segments` and leaves an anchor (the last deleted entry's sequence and hash) so the chain still
verifies from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trading.audit.v1 import audit_pb2

GENESIS = "0" * 64
LENGTH = struct.Struct(">I")


def entry_hash(prev_hash: str, entry: audit_pb2.LedgerEntry) -> str:
    unsigned = audit_pb2.LedgerEntry()
    unsigned.CopyFrom(entry)
    unsigned.hash = ""
    return hashlib.sha256(prev_hash.encode() + unsigned.SerializeToString(deterministic=True)).hexdigest()


def read_segment(path: Path) -> Iterator[tuple[int, audit_pb2.LedgerEntry | None, str]]:
    """(index, entry, problem): entry None with a problem when the bytes do not parse."""
    data = path.read_bytes()
    position, index = 0, 0
    while position < len(data):
        if position + LENGTH.size > len(data):
            yield index, None, f"truncated length prefix at byte {position}"
            return
        (size,) = LENGTH.unpack_from(data, position)
        body = data[position + LENGTH.size : position + LENGTH.size + size]
        if len(body) != size:
            yield index, None, f"truncated entry at byte {position}"
            return
        try:
            yield index, audit_pb2.LedgerEntry.FromString(body), ""
        except Exception as error:
            yield index, None, f"entry does not parse: {error}"
        position += LENGTH.size + size
        index += 1


@dataclass
class VerifyResult:
    ok: bool
    entries_checked: int
    errors: list[str] = field(default_factory=list)

    @property
    def first_error(self) -> str:
        return self.errors[0] if self.errors else ""


class Ledger:
    def __init__(self, directory: Path, entries_per_segment: int = 10_000, keep_segments: int = 0) -> None:
        self.directory = directory
        self.entries_per_segment = entries_per_segment
        self.keep_segments = keep_segments  # 0 = keep everything
        directory.mkdir(parents=True, exist_ok=True)
        self.sequence = 0
        self.last_hash = GENESIS
        self.segment_number = 1
        self.segment_entries = 0
        self.recorded: set[tuple[str, int, int]] = set()
        self._recover()
        self._file = self.segment_path(self.segment_number).open("ab")

    def segment_path(self, number: int) -> Path:
        return self.directory / f"segment-{number:06d}.log"

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("segment-*.log"))

    def _recover(self) -> None:
        anchor = self.directory / "anchor.json"
        if anchor.exists():
            data = json.loads(anchor.read_text())
            self.sequence, self.last_hash = data["last_sequence"], data["last_hash"]
        for path in self.segments():
            self.segment_number = int(path.stem.split("-")[1])
            self.segment_entries = 0
            for _, entry, problem in read_segment(path):
                if entry is None:
                    raise RuntimeError(f"ledger {path} is damaged ({problem}); run `tradectl audit verify`")
                self.sequence, self.last_hash = entry.sequence, entry.hash
                self.segment_entries += 1
                self.recorded.add((entry.topic, entry.partition, entry.offset))
        if self.segment_entries >= self.entries_per_segment and not self.seal_path(self.segment_number).exists():
            self.seal(self.segment_number)
        if self.seal_path(self.segment_number).exists():
            self.segment_number += 1
            self.segment_entries = 0

    def seal_path(self, number: int) -> Path:
        return self.directory / f"segment-{number:06d}.seal"

    def append(self, entry: audit_pb2.LedgerEntry) -> audit_pb2.LedgerEntry | None:
        """Append and fsync; None when this (topic, partition, offset) is already recorded (a redelivery)."""
        key = (entry.topic, entry.partition, entry.offset)
        if key in self.recorded:
            return None
        entry.sequence = self.sequence + 1
        entry.prev_hash = self.last_hash
        entry.hash = entry_hash(self.last_hash, entry)
        body = entry.SerializeToString(deterministic=True)
        self._file.write(LENGTH.pack(len(body)) + body)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.sequence, self.last_hash = entry.sequence, entry.hash
        self.recorded.add(key)
        self.segment_entries += 1
        return entry

    def roll_if_full(self) -> dict[str, object] | None:
        """Seal the current segment when full and start the next; returns the seal for publishing."""
        if self.segment_entries < self.entries_per_segment:
            return None
        self._file.close()
        seal = self.seal(self.segment_number)
        self.segment_number += 1
        self.segment_entries = 0
        self._file = self.segment_path(self.segment_number).open("ab")
        self.apply_retention()
        return seal

    def seal(self, number: int) -> dict[str, object]:
        path = self.segment_path(number)
        entries = [e for _, e, _ in read_segment(path) if e is not None]
        seal = {
            "segment": path.name,
            "first_sequence": entries[0].sequence,
            "last_sequence": entries[-1].sequence,
            "last_hash": entries[-1].hash,
            "checkpoint_hash": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        self.seal_path(number).write_text(json.dumps(seal, indent=2) + "\n")
        return seal

    def apply_retention(self) -> list[str]:
        if not self.keep_segments:
            return []
        sealed = [p for p in self.segments() if self.seal_path(int(p.stem.split("-")[1])).exists()]
        removed = []
        for path in sealed[: max(0, len(sealed) - self.keep_segments)]:
            seal_file = self.seal_path(int(path.stem.split("-")[1]))
            seal = json.loads(seal_file.read_text())
            (self.directory / "anchor.json").write_text(
                json.dumps(
                    {
                        "last_sequence": seal["last_sequence"],
                        "last_hash": seal["last_hash"],
                        "removed_through": path.name,
                    },
                    indent=2,
                )
                + "\n"
            )
            path.unlink()
            seal_file.unlink()
            removed.append(path.name)
        return removed

    def close(self) -> None:
        self._file.close()

    def entries(self) -> Iterator[audit_pb2.LedgerEntry]:
        return read_entries(self.directory)


def read_entries(directory: Path) -> Iterator[audit_pb2.LedgerEntry]:
    for path in sorted(directory.glob("segment-*.log")):
        for _, entry, _ in read_segment(path):
            if entry is not None:
                yield entry


def verify(directory: Path) -> VerifyResult:
    """Check every link, hash, sequence number and seal; errors say where (segment, entry) and what."""
    errors: list[str] = []
    checked = 0
    anchor = directory / "anchor.json"
    expected_sequence, previous = 1, GENESIS
    if anchor.exists():
        data = json.loads(anchor.read_text())
        expected_sequence, previous = data["last_sequence"] + 1, data["last_hash"]
    segments = sorted(directory.glob("segment-*.log"))
    if not segments:
        return VerifyResult(False, 0, [f"no ledger segments in {directory}"])
    for path in segments:
        for index, entry, problem in read_segment(path):
            where = f"{path.name}, entry {index}"
            if entry is None:
                errors.append(f"{where}: {problem}")
                break
            checked += 1
            if entry.sequence != expected_sequence:
                kind = "removed or reordered entries" if entry.sequence > expected_sequence else "reordered entries"
                errors.append(f"{where}: sequence {entry.sequence}, expected {expected_sequence} ({kind})")
            if entry.prev_hash != previous:
                errors.append(f"{where}: prev_hash does not link to the previous entry (removed or reordered)")
            if entry_hash(entry.prev_hash, entry) != entry.hash:
                errors.append(f"{where}: hash mismatch (the entry was altered)")
            expected_sequence, previous = entry.sequence + 1, entry.hash
        seal_file = path.with_suffix(".seal")
        if seal_file.exists():
            seal = json.loads(seal_file.read_text())
            if hashlib.sha256(path.read_bytes()).hexdigest() != seal["checkpoint_hash"]:
                errors.append(f"{path.name}: checkpoint hash does not match the sealed segment")
    return VerifyResult(not errors, checked, errors)
