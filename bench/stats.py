"""Summaries of repeated timings."""
from __future__ import annotations

import math
import statistics


def median(values: list[float]) -> float:
    return statistics.median(values)


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile: with 10 samples, the 9th smallest."""
    return _nearest_rank(values, 0.90)


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    return _nearest_rank(values, 0.95)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
