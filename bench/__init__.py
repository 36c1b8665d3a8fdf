"""Benchmarks of mlbatch: `make bench` runs them and records the figures in docs/benchmarks.md.

Each benchmark is one module with `NAME`, `MEASURES` (one line: what it measures),
`run() -> dict` (its figures) and `table(result) -> (headers, rows)` for the report.
Kept out of the test suite on purpose: timings are recorded here, never asserted.
"""
