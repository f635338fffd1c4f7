"""`python -m signal_service.bundle`: add a trained version to the model registry shipped with the service, for the
paper exchange's replay, and make it the production one.

The version is registered anew (next version number, its own content hash) with its manifest plus a `replay` block:
the paper exchange's source, symbols and days it is bundled for. A version that has seen data on or after the
replay's first day (its training or validation window reaches it) is refused: the demo trades out of sample.

    tradectl train -c services/signal/training/trend-ppo.yaml --registry /tmp/bundle
    python -m signal_service.bundle /tmp/bundle/trend-ppo/1 --start 2010-01-04 --end 2013-03-01
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trading_policy import ModelRegistry, RegistryError
from trading_policy.periods import data_periods, in_sample_message
from trading_policy.registry import MANIFEST, POLICY_FILE

from signal_service import BUNDLED_REGISTRY

# Set by the registry on registration; a bundled copy gets its own.
IDENTITY_KEYS = ("name", "version", "created_at", "content_hash")


def bundle(
    source_dir: Path, replay: dict[str, Any], registry_root: Path = BUNDLED_REGISTRY, reason: str = ""
) -> dict[str, Any]:
    """Register the version in `source_dir` into the bundled registry with its replay, promoted to production."""
    manifest = json.loads((source_dir / MANIFEST).read_text())
    name = str(manifest.get("name") or source_dir.parent.name)
    message = in_sample_message(name, data_periods(manifest), str(replay["start"]))
    if message:
        raise RegistryError(f"not bundled: {message}")
    registry = ModelRegistry(registry_root)
    origin = ModelRegistry(source_dir.parent.parent)
    origin.verify(origin.get(name, source_dir.name))  # files unchanged since it was trained
    extra = sorted(p for p in source_dir.iterdir() if p.is_file() and p.name not in (MANIFEST, POLICY_FILE))
    fresh = {k: v for k, v in manifest.items() if k not in IDENTITY_KEYS}
    fresh["replay"] = replay
    training = dict(fresh.get("training") or {})
    if training.get("checkpoint"):  # where it was trained, relative to the repo: no machine's path in the bundle
        checkpoint = Path(str(training["checkpoint"]))
        if checkpoint.is_absolute() and checkpoint.is_relative_to(Path.cwd()):
            training["checkpoint"] = checkpoint.relative_to(Path.cwd()).as_posix()
        fresh["training"] = training
    model = registry.register(name, source_dir / POLICY_FILE, fresh, extra_files=extra)
    registry.promote(name, model.version, reason=reason or f"out of sample for the replay from {replay['start']}")
    return model.manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m signal_service.bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument("version_dir", type=Path, help="a registered version: <registry>/<name>/<version>")
    parser.add_argument("--source", default="bokeh", help="the paper exchange's data source of the replay")
    parser.add_argument("--symbols", default="AAPL,MSFT,IBM,GOOG", help="the replay's universe")
    parser.add_argument("--start", required=True, help="the replay's first day (ISO date)")
    parser.add_argument("--end", required=True, help="the replay's last day (ISO date)")
    parser.add_argument("--registry", type=Path, default=BUNDLED_REGISTRY, help="registry to add it to")
    args = parser.parse_args(argv)
    replay = {
        "exchange": "paper-exchange",
        "source": args.source,
        "symbols": [s.strip() for s in args.symbols.split(",") if s.strip()],
        "start": args.start,
        "end": args.end,
    }
    try:
        manifest = bundle(args.version_dir, replay, args.registry)
    except RegistryError as error:
        raise SystemExit(str(error)) from None
    print(f"bundled {manifest['name']}@{manifest['version']} (production) in {args.registry}: {replay}")


if __name__ == "__main__":
    main()
