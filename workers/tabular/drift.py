"""drift.features: how far each feature of a new table has moved from a reference table.

Metrics: `drift` (the largest per-feature value: what a gate reads), `drift_mean`, and the
feature that drifted most; every feature's value goes to drift.json.

- psi: population stability index over the reference's quantile bins,
  sum((new% - ref%) * ln(new% / ref%)). Rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large.
- ks: the two-sample Kolmogorov-Smirnov statistic, the largest gap between the two
  empirical distribution functions (0 same, 1 disjoint).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from workers import artifacts
from workers.errors import BadInput
from workers.tabular.schema import read_schema
from workers.tabular.table import read_features
from workers.request import ShardResult, StepRequest

EPSILON = 1e-4  # share given to an empty bin, so that ln(new% / ref%) stays finite


def features(request: StepRequest) -> ShardResult:
    if request.shard_count != 1:
        raise BadInput(f"drift.features runs as one shard, got shards={request.shard_count}")
    settings = request.settings
    reference_manifest, current_manifest = _reference_manifest(request), _current_manifest(request)
    reference, current = read_features(reference_manifest), read_features(current_manifest)
    not_features = _ids_and_labels(reference_manifest) | _ids_and_labels(current_manifest)
    columns = _columns(settings.columns, reference, current, not_features)
    measure = psi if settings.method == "psi" else ks
    values = {column: measure(reference[column], current[column], settings.bins) for column in columns}
    worst = max(values, key=values.get)
    report = {"method": settings.method, "reference": settings.reference, "reference_rows": len(reference),
              "current_rows": len(current), "features": values}
    uri = artifacts.write_json(request.shard_path("drift.json"), report)
    for column, value in sorted(values.items(), key=lambda item: -item[1]):
        print(f"{settings.method} {column:<20} {value:.4f}", flush=True)
    return ShardResult(
        counts={"features": len(values), "reference_rows": len(reference), "current_rows": len(current)},
        metrics={"drift": values[worst], "drift_mean": float(np.mean(list(values.values()))), "drift_feature": worst},
        outputs={"drift": uri},
    )


def psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """Population stability index of `current` against `reference`, over the reference's quantile bins."""
    ref, cur = _finite(reference), _finite(current)
    # Inner cut points at the reference's quantiles; repeated ones merge (a column of few values
    # gets one bin per value), and the outer bins reach to -inf and +inf so no row falls outside.
    cuts = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = _shares(ref, cuts)
    cur_share = _shares(cur, cuts)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def ks(reference: pd.Series, current: pd.Series, bins: int = 0) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: max |F_ref(x) - F_cur(x)| over every observed x."""
    ref, cur = np.sort(_finite(reference)), np.sort(_finite(current))
    points = np.concatenate([ref, cur])
    gap = np.searchsorted(ref, points, side="right") / len(ref) - np.searchsorted(cur, points, side="right") / len(cur)
    return float(np.max(np.abs(gap)))


def _shares(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    # side="right": a value equal to a cut point goes to the bin above it, in both tables alike
    counts = np.bincount(np.searchsorted(cuts, values, side="right"), minlength=len(cuts) + 1)
    return np.maximum(counts / len(values), EPSILON)


def _finite(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise BadInput(f"column '{series.name}' has no numeric values to compare")
    return values


def _ids_and_labels(manifest: dict[str, Any]) -> set[str]:
    """The id and label columns of a table, by its schema: never compared as features."""
    try:
        schema = read_schema(manifest)
    except BadInput:  # a table without a schema: every numeric column is a feature
        return set()
    return {c for c in (schema.id, schema.label) if c}


def _columns(wanted: list[str] | None, reference: pd.DataFrame, current: pd.DataFrame,
             not_features: set[str]) -> list[str]:
    if wanted:
        for column in wanted:
            for name, table in (("reference", reference), ("new", current)):
                if column not in table.columns:
                    raise BadInput(f"column '{column}' is not in the {name} table (columns: {', '.join(table.columns)})")
                if not pd.api.types.is_numeric_dtype(table[column]):
                    raise BadInput(f"column '{column}' of the {name} table is not numeric: drift is measured on numbers")
        return list(wanted)
    shared = [c for c in reference.columns if c in current.columns and c not in not_features
              and pd.api.types.is_numeric_dtype(reference[c]) and pd.api.types.is_numeric_dtype(current[c])]
    if not shared:
        raise BadInput("the reference and the new table share no numeric feature column")
    return shared


def _reference_manifest(request: StepRequest) -> dict[str, Any]:
    reference = request.settings.reference
    if reference in request.inputs:
        return artifacts.read_step_manifest(request.inputs[reference])
    if "." not in reference:
        raise BadInput(f"reference {reference!r} is neither an input step ({', '.join(request.inputs) or 'none'}) "
                       "nor 'BATCH.STEP'")
    root = os.environ.get("MLBATCH_ARTIFACTS")
    if not root:
        raise BadInput("params.reference 'BATCH.STEP' needs MLBATCH_ARTIFACTS (the artifact root) in the environment")
    return artifacts.read_latest(root, reference)


def _current_manifest(request: StepRequest) -> dict[str, Any]:
    """The one input step, other than the reference, whose output is a feature table."""
    candidates = {name: artifacts.read_step_manifest(uri) for name, uri in request.inputs.items()
                  if name != request.settings.reference}
    tables = {name: m for name, m in candidates.items() if artifacts.step_output_uris(m, "features")}
    if len(tables) != 1:
        got = ", ".join(sorted(tables)) or "none"
        raise BadInput(f"drift.features compares one new feature table with the reference; input steps with "
                       f"features (besides the reference): {got}")
    return next(iter(tables.values()))
