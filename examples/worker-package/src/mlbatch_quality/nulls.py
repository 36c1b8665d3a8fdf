"""quality.nulls: the share of missing values of each column of a table.

Imported only when a shard runs (never when a batch is linted or parsed), so heavy libraries
may be imported here at module level.
"""
from __future__ import annotations

import pandas as pd

from workers import artifacts
from workers.errors import BadInput
from workers.request import ShardResult, StepRequest


def nulls(request: StepRequest) -> ShardResult:
    """Shard i of n checks every n-th file of the input table, from the i-th."""
    settings = request.settings
    manifest = request.input_with(settings.table)
    files = artifacts.step_output_uris(manifest, settings.table)[request.shard_index::request.shard_count]
    frames = [artifacts.read_parquet(uri) for uri in files]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    missing = sorted(set(settings.columns or []) - set(table.columns)) if frames else []  # no file: nothing to check
    if missing:
        raise BadInput(f"quality.nulls: column(s) {', '.join(missing)} not in the table "
                       f"'{settings.table}' (columns: {', '.join(map(str, table.columns))})")
    shares = table[settings.columns or list(table.columns)].isna().mean() if len(table) else pd.Series(dtype=float)
    report = {str(column): round(float(share), 6) for column, share in shares.items()}
    uri = artifacts.write_json(request.shard_path("nulls.json"), report)
    worst = max(report.values(), default=0.0)
    print(f"quality.nulls: {len(table)} rows, worst column {max(report, key=report.get, default='-')} "
          f"{worst:.2%} missing", flush=True)
    return ShardResult(counts={"rows": len(table)}, metrics={"null_share": worst, "rows": len(table)},
                       outputs={"nulls": uri})
