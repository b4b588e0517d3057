"""Benchmarks of the demo: ``python -m benchmarks.bench --help``."""
