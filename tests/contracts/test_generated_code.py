"""The committed contracts library (libs/contracts) must equal what proto/generate.py makes from proto/."""

from __future__ import annotations

import filecmp
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "libs" / "contracts" / "src" / "trading"


def _load_generator():
    spec = importlib.util.spec_from_file_location("proto_generate", REPO / "proto" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["proto_generate"] = module
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_generated_code_is_current(tmp_path: Path) -> None:
    _load_generator().generate(tmp_path)
    fresh = _files(tmp_path / "trading")
    committed = _files(COMMITTED)
    assert sorted(fresh) == sorted(committed), "run `make proto`: generated file set differs"
    stale = [name for name in fresh if not filecmp.cmp(fresh[name], committed[name], shallow=False)]
    assert not stale, f"run `make proto`: stale generated files {stale}"


def test_every_message_on_the_bus_carries_an_envelope() -> None:
    from trading_platform.topics import TOPICS

    for topic in TOPICS.values():
        fields = topic.message_type.DESCRIPTOR.fields_by_name
        assert "envelope" in fields, f"{topic.type_name} on {topic.name} has no envelope"
        assert fields["envelope"].message_type.full_name == "trading.common.v1.Envelope"
