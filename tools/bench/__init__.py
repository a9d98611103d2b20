"""Benchmarks: ``python -m tools.bench`` (the pipeline, :mod:`tools.bench.bench`, its subprocess
workers in :mod:`tools.bench.workers`) and ``python -m tools.bench.encoders``."""
