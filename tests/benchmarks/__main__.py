"""Run every benchmark (or those named): python -m tests.benchmarks [name ...]."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if argv:
        unknown = set(argv) - set(names)
        if unknown:
            print(f"unknown benchmarks {sorted(unknown)}; available: {names}", file=sys.stderr)
            return 2
        names = [n for n in names if n in argv]
    failures = []
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            importlib.import_module(f"tests.benchmarks.{name}").main()
        except Exception as error:  # one broken benchmark must not hide the others' figures
            failures.append(name)
            print(f"!! {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
        print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
