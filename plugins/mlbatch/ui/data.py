"""The page's data for a batch: its recent runs as views, the gated metric and the advice."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlbatch.ui.views import RunView, gated_metric, run_view, step_advice


@dataclass
class Batch:
    runs: list[RunView]  # newest first
    gated: tuple[str, str] | None  # (step, metric) the chart follows
    advice: dict[str, str]


def batch(dag_id: str, limit: int) -> Batch | None:
    from mlbatch.settings import load_settings
    from mlbatch.ui import records, specs

    loader = records.batch_files({dag_id}).get(dag_id)
    if loader is None:
        return None
    steps = specs.resolved_steps(loader)
    prices = load_settings().prices
    runs = [run_view(dag_id, record, steps, prices) for record in records.recent_runs(dag_id, limit)]
    return Batch(runs, gated_metric(steps), step_advice(runs, steps))


def latest_runs(readable: set[str], per_batch: int) -> dict[str, list[RunView]]:
    from mlbatch.settings import load_settings
    from mlbatch.ui import records, specs

    prices = load_settings().prices
    found: dict[str, Any] = {}
    for dag_id, loader in records.batch_files(readable).items():
        steps = specs.resolved_steps(loader)
        found[dag_id] = [run_view(dag_id, r, steps, prices) for r in records.recent_runs(dag_id, per_batch)]
    return found
