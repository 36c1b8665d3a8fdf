"""The out-of-fold metrics of a fold-per-shard model step over every fold, computed when the step commits.

Each shard knows its own fold only; the step's honest quality is that of every out-of-fold
prediction together. Written into the step manifest, so readers (the run summary, tracking)
take it from there and never recompute it.
"""
from __future__ import annotations

from typing import Any

OOF_ROWS_MAX = 5_000_000  # past this the step keeps its fold metrics only: one read of every oof file would be slow


def step_metrics(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """{metric: value over every fold, "folds": k} of a step whose shards each wrote an `oof` output."""
    import pandas as pd

    from workers.artifacts import read_parquet
    from workers.tabular import metrics

    uris = [shard["outputs"]["oof"] for shard in shards if "oof" in shard.get("outputs", {})]
    rows = sum(int(shard.get("counts", {}).get("oof_rows", 0)) for shard in shards)
    tasks = {shard.get("task") for shard in shards}
    if len(uris) < 2 or len(uris) != len(shards) or rows > OOF_ROWS_MAX or len(tasks) != 1 or None in tasks:
        return {}
    oof = pd.concat([read_parquet(uri) for uri in uris], ignore_index=True)
    found = metrics.scores(tasks.pop(), oof["y"].to_numpy(), metrics.read_pred(oof))
    return {**{name: value for name, value in found.items() if value is not None}, "folds": len(uris)}
