"""Regenerate the Python contracts library (libs/contracts) from the .proto files under proto/.

Usage: python proto/generate.py [--out DIR]

The generated code is committed; tests/contracts/test_generated_code.py fails when it is stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = PROTO_ROOT.parent / "libs" / "contracts" / "src"
GENERATED_PACKAGE = "trading"


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.glob(f"{GENERATED_PACKAGE}/**/*.proto"))


def generate(out: Path) -> None:
    """Write the generated modules for every proto file into out/trading/..., replacing what was there."""
    target = out / GENERATED_PACKAGE
    if target.exists():
        shutil.rmtree(target)
    out.mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the message above")
    # Every generated directory is a regular package so setuptools and mypy find it.
    for directory in [target, *[d for d in target.rglob("*") if d.is_dir()]]:
        init = directory / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated from proto/ by proto/generate.py. Do not edit."""\n')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output source root (default: libs/contracts/src)"
    )
    args = parser.parse_args(argv)
    generate(args.out)
    print(f"generated {len(proto_files())} proto files into {args.out / GENERATED_PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
