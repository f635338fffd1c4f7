"""Benchmarks: `make bench` runs every bench_*.py module's main(); each writes benchmarks/results/<name>.json."""
