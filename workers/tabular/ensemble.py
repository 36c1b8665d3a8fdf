"""ensemble.average: average the fold models of a training step."""
from __future__ import annotations

import pandas as pd

from workers import artifacts
from workers.errors import BadInput
from workers.request import ShardResult, StepRequest
from workers.tabular import metrics
from workers.tabular.models import AveragedModel


def average(request: StepRequest) -> ShardResult:
    """One model from k fold models; its quality is measured on the k out-of-fold
    predictions together, rows no fold model saw while training."""
    manifest = request.input_with("model")
    models = [artifacts.read_joblib(uri) for uri in artifacts.step_output_uris(manifest, "model")]
    oof_uris = artifacts.step_output_uris(manifest, "oof")
    if len(oof_uris) != len(models):
        raise BadInput(f"input step at {manifest['step_uri']} has {len(models)} models "
                       f"but {len(oof_uris)} out-of-fold predictions")
    oof = pd.concat([artifacts.read_parquet(uri) for uri in oof_uris], ignore_index=True)
    if oof["row"].duplicated().any():
        raise BadInput(f"out-of-fold predictions of {manifest['step_uri']} overlap: not disjoint folds")

    model = AveragedModel(models)
    uri = artifacts.write_joblib(request.shard_path("model.joblib"), model)
    return ShardResult(
        counts={"models": len(models), "oof_rows": len(oof)},
        metrics={**metrics.scores(model.task, oof["y"], metrics.read_pred(oof)), "folds": len(models)},
        outputs={"model": uri},
        extra={"task": model.task},
    )
