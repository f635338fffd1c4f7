"""The model registry: a directory of immutable model versions and the pointers that say which one serves.

Layout under the root (a local path here, a mounted volume or synced bucket in production):

    <root>/<name>/<version>/policy.onnx     the exported policy (obs -> action), what serving loads
    <root>/<name>/<version>/manifest.json   data window, features, hyper-parameters, seed, metrics, code version,
                                           content hash (sha256 over every file of the version but the manifest)
    <root>/<name>/stages.json              {"production": "3", "shadow": "4", "history": [...every promotion...]}

Versions are integers counted from 1 and never rewritten. `promote` moves a stage pointer and appends to the history;
`rollback` moves production back to the version it held before the last promotion. Writers replace files atomically
(write to a temporary file, then rename), so a reader (the signal service polling for a new production version) never
sees half a file. `verify` recomputes the content hash: a version whose files changed after registration is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
POLICY_FILE = "policy.onnx"
STAGES = "stages.json"
STAGE_NAMES = ("production", "shadow")
REQUIRED_MANIFEST_KEYS = ("algorithm", "feature_names", "feature_version", "observation", "action", "seed")


class RegistryError(Exception):
    """A registry operation that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    path: Path
    manifest: dict[str, Any]

    @property
    def onnx_path(self) -> Path:
        return self.path / POLICY_FILE

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])

    @property
    def label(self) -> str:
        """What signals carry as model version: `<name>@<version>+<first 12 hex of the content hash>`."""
        return f"{self.name}@{self.version}+{self.content_hash[:12]}"


def content_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        json.dump(value, out, indent=2, sort_keys=True)
        out.write("\n")
    os.chmod(temporary, 0o644)  # mkstemp makes it private; registry files are read by the serving account
    os.replace(temporary, path)


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def versions(self, name: str) -> list[ModelVersion]:
        directory = self.root / name
        if not directory.is_dir():
            return []
        numbers = sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())
        return [self._load(name, str(n)) for n in numbers]

    def _load(self, name: str, version: str) -> ModelVersion:
        path = self.root / name / version
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            known = ", ".join(v.version for v in self.versions(name)) if (self.root / name).is_dir() else "none"
            raise RegistryError(f"model {name!r} has no version {version!r} in {self.root} (versions: {known})")
        return ModelVersion(name, version, path, json.loads(manifest_path.read_text()))

    def register(
        self, name: str, onnx_path: Path, manifest: dict[str, Any], extra_files: Sequence[Path] = ()
    ) -> ModelVersion:
        missing = [key for key in REQUIRED_MANIFEST_KEYS if key not in manifest]
        if missing:
            raise RegistryError(f"manifest lacks {', '.join(missing)}: a model is registered with its full manifest")
        if not name or "/" in name or name.startswith("."):
            raise RegistryError(f"invalid model name {name!r}")
        (self.root / name).mkdir(parents=True, exist_ok=True)
        existing = self.versions(name)
        version = str(int(existing[-1].version) + 1 if existing else 1)
        staging = Path(tempfile.mkdtemp(dir=self.root / name, prefix=".staging-"))
        staging.chmod(0o755)
        shutil.copyfile(onnx_path, staging / POLICY_FILE)
        for extra in extra_files:
            shutil.copyfile(extra, staging / Path(extra).name)
        full = dict(manifest)
        full.update(
            name=name,
            version=version,
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            content_hash=content_hash(staging),
        )
        _write_json(staging / MANIFEST, full)
        staging.rename(self.root / name / version)
        return self._load(name, version)

    def stages(self, name: str) -> dict[str, Any]:
        path = self.root / name / STAGES
        return json.loads(path.read_text()) if path.is_file() else {"history": []}

    def get(self, name: str, version: str | None = None, stage: str = "production") -> ModelVersion:
        """A version by number, or the one a stage points at (production by default)."""
        if version is None:
            version = self.stages(name).get(stage)
            if version is None:
                if not self.versions(name):
                    raise RegistryError(
                        f"no model {name!r} in {self.root}; train one with `tradectl train` (models: "
                        f"{', '.join(self.names()) or 'none'})"
                    )
                raise RegistryError(f"model {name!r} has no {stage} version; `tradectl models promote {name} <v>`")
        return self._load(name, version)

    def verify(self, model: ModelVersion) -> None:
        actual = content_hash(model.path)
        if actual != model.content_hash:
            raise RegistryError(
                f"{model.name}@{model.version}: files changed after registration (content hash {actual[:12]} != "
                f"manifest {model.content_hash[:12]}); register a new version instead of editing one"
            )

    def promote(self, name: str, version: str, stage: str = "production", reason: str = "") -> dict[str, Any]:
        if stage not in STAGE_NAMES:
            raise RegistryError(f"unknown stage {stage!r}; stages: {', '.join(STAGE_NAMES)}")
        self.verify(self._load(name, version))
        stages = self.stages(name)
        previous = stages.get(stage)
        stages[stage] = version
        entry = {
            "stage": stage,
            "from": previous,
            "to": version,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "reason": reason,
        }
        stages.setdefault("history", []).append(entry)
        _write_json(self.root / name / STAGES, stages)
        return entry

    def clear(self, name: str, stage: str) -> None:
        stages = self.stages(name)
        if stages.pop(stage, None) is not None:
            stages.setdefault("history", []).append(
                {"stage": stage, "to": None, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            )
            _write_json(self.root / name / STAGES, stages)

    def rollback(self, name: str, stage: str = "production", reason: str = "rollback") -> dict[str, Any]:
        """Move the stage back to the version it held before its last promotion."""
        history = [h for h in self.stages(name).get("history", []) if h["stage"] == stage and h.get("to")]
        if not history or history[-1].get("from") is None:
            raise RegistryError(f"{name}: {stage} has no earlier version to roll back to")
        return self.promote(name, history[-1]["from"], stage, reason=reason)
