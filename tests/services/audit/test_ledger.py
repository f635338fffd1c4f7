"""The hash-chained ledger: appends verify; altered, removed and reordered entries are caught and located."""

from __future__ import annotations

import struct
from pathlib import Path

from audit_service.ledger import LENGTH, Ledger, read_segment, verify
from hypothesis import given, settings
from hypothesis import strategies as st
from trading.audit.v1 import audit_pb2


def fill(directory: Path, count: int, per_segment: int = 1000, keep: int = 0) -> Ledger:
    ledger = Ledger(directory, per_segment, keep)
    for offset in range(count):
        ledger.append(
            audit_pb2.LedgerEntry(
                topic="oms.events.v1",
                partition=0,
                offset=offset,
                payload=f"payload-{offset}".encode(),
                client_order_id=f"co-{offset}",
            )
        )
        ledger.roll_if_full()
    return ledger


def test_appends_verify_and_redelivery_is_not_recorded_twice(tmp_path: Path) -> None:
    ledger = fill(tmp_path, 25)
    assert ledger.append(audit_pb2.LedgerEntry(topic="oms.events.v1", partition=0, offset=3)) is None
    ledger.close()
    result = verify(tmp_path)
    assert result.ok and result.entries_checked == 25
    reopened = Ledger(tmp_path)
    assert reopened.sequence == 25 and (("oms.events.v1", 0, 24) in reopened.recorded)


def rewrite(path: Path, entries: list[audit_pb2.LedgerEntry]) -> None:
    path.write_bytes(
        b"".join(LENGTH.pack(len(b)) + b for b in (e.SerializeToString(deterministic=True) for e in entries))
    )


def test_removed_reordered_and_altered_entries_are_located(tmp_path: Path) -> None:
    fill(tmp_path, 10).close()
    segment = sorted(tmp_path.glob("segment-*.log"))[0]
    entries = [e for _, e, _ in read_segment(segment)]
    original = segment.read_bytes()

    rewrite(segment, entries[:4] + entries[5:])
    assert "entry 4: sequence 6, expected 5" in verify(tmp_path).first_error

    rewrite(segment, [*entries[:2], entries[3], entries[2], *entries[4:]])
    assert "entry 2" in verify(tmp_path).first_error

    altered = list(entries)
    altered[7] = audit_pb2.LedgerEntry()
    altered[7].CopyFrom(entries[7])
    altered[7].payload = b"forged"
    rewrite(segment, altered)
    assert verify(tmp_path).first_error == f"{segment.name}, entry 7: hash mismatch (the entry was altered)"

    segment.write_bytes(original)
    assert verify(tmp_path).ok


def test_segments_roll_seal_and_retention_keeps_a_verifiable_anchor(tmp_path: Path) -> None:
    ledger = fill(tmp_path, 35, per_segment=10, keep=2)
    ledger.close()
    segments = sorted(p.name for p in tmp_path.glob("segment-*.log"))
    assert segments == ["segment-000002.log", "segment-000003.log", "segment-000004.log"]
    assert (tmp_path / "anchor.json").exists() and (tmp_path / "segment-000003.seal").exists()
    result = verify(tmp_path)
    assert result.ok and result.entries_checked == 25
    sealed = tmp_path / "segment-000003.log"
    sealed.write_bytes(sealed.read_bytes() + struct.pack(">I", 0))
    assert not verify(tmp_path).ok


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_single_flipped_byte_is_detected(tmp_path_factory, data) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("ledger")
    fill(directory, 6).close()
    segment = sorted(directory.glob("segment-*.log"))[0]
    raw = bytearray(segment.read_bytes())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    segment.write_bytes(bytes(raw))
    assert not verify(directory).ok
