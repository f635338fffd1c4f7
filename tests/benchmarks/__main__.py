"""Run every benchmark (or those named): python -m tests.benchmarks [name ...] [--option value ...].

Options (arguments starting with "-" and the values after them) go to the named benchmark's main(argv), for the
benchmarks that take them (bench_load_marketdata --duration-s 60)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    first_option = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    argv, options = argv[:first_option], argv[first_option:]
    if options and len(argv) != 1:
        print(f"options {options} need exactly one benchmark named before them", file=sys.stderr)
        return 2
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
            main = importlib.import_module(f"tests.benchmarks.{name}").main
            if options and not inspect.signature(main).parameters:
                raise TypeError(f"{name} takes no options (got {options})")
            main(options) if options else main()
        except Exception as error:  # one broken benchmark must not hide the others' figures
            failures.append(name)
            print(f"!! {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
        print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
