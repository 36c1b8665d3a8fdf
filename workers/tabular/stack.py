"""ensemble.stack: combine several model steps (GBDT, MLP, ...) on their out-of-fold predictions.

Binary classifiers are stacked by a logistic regression on their logits (AUC, log loss);
regressors by a linear regression with non-negative weights on their predictions (RMSE, MAE);
multiclass classifiers by a multinomial logistic regression on their log-probabilities
(workers.tabular.multistack: macro AUC, log loss).

Inputs: every upstream step with `oof` outputs is a base model (its shard i = fold i); an
upstream data step (one with a `features` output) is optional and only feeds the
permutation importance. Every base must have predicted the same rows in the same folds.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers import artifacts
from workers.errors import BadInput
from workers.request import ShardResult, StepRequest
from workers.tabular import metrics, multistack, plots
from workers.tabular.importance import permutation_auc_drop
from workers.tabular.models import step_model
from workers.tabular.stacked import StackedModel, logit
from workers.tabular.table import read_features

ENSEMBLE = "ensemble"  # the ensemble's name in plots


def stack(request: StepRequest) -> ShardResult:
    """Stack (cross-validated logistic regression on the logits) or average the base models; the
    ensemble's out-of-fold predictions are honest: each fold's come from a combiner fitted without it."""
    if request.shard_count != 1:
        raise BadInput(f"ensemble.stack runs as one shard, got shards={request.shard_count}")
    settings = request.settings
    manifests = {name: artifacts.read_step_manifest(uri) for name, uri in request.inputs.items()}
    bases = {name: m for name, m in manifests.items() if artifacts.step_output_uris(m, "oof")}
    if not bases:
        raise BadInput(f"ensemble.stack needs at least one input model step with out-of-fold predictions "
                       f"('oof' outputs, e.g. train.gbdt); inputs: {', '.join(sorted(manifests)) or 'none'}")
    models = {name: step_model(manifest) for name, manifest in bases.items()}
    task = _common_task(models)
    oof = aligned_oof(bases, task)
    names = list(bases)
    y, folds, predicted = oof["y"].to_numpy(), oof["fold"].to_numpy(), base_predictions(oof, names)

    if settings.method == "stack":
        fit = {"binary": _cross_validated_stack, "multiclass": multistack.cross_validated_stack}.get(
            task, _cross_validated_linear)
        ensemble_oof, weights, intercept = fit(predicted, y, folds, settings.C, settings.seed)
    else:
        weights, intercept = _average_weights(settings.weights, names), 0.0
        ensemble_oof = multistack.combine(predicted, "average", weights, 0.0) if task == "multiclass" \
            else predicted @ weights
    model = StackedModel(models, settings.method, weights, intercept)

    predictions = {**{name: predicted[:, j] for j, name in enumerate(names)}, ENSEMBLE: ensemble_oof}
    result_metrics: dict[str, Any] = {**metrics.scores(task, y, ensemble_oof),
                                      "folds": int(len(np.unique(folds))), "models": len(names)}
    shares = multistack.weight_shares(weights, names) if task == "multiclass" and settings.method == "stack" \
        else dict(zip(names, map(float, weights)))
    for name in names:
        result_metrics.update({f"{metric}_{name}": value for metric, value in metrics.scores(task, y, predictions[name]).items()})
        result_metrics[f"weight_{name}"] = shares[name]

    outputs = {"model": artifacts.write_joblib(request.shard_path("model.joblib"), model)}
    if settings.plots and task == "binary":  # ROC, calibration and the AUC drop are binary plots
        outputs.update(_write_plots(request, manifests, model, oof, predictions))
    return ShardResult(counts={"oof_rows": len(oof), "models": len(names)}, metrics=result_metrics, outputs=outputs,
                       extra={"task": task})


def base_predictions(oof: pd.DataFrame, names: list[str]) -> np.ndarray:
    """(rows, bases) predictions of `aligned_oof`, or (rows, bases, classes) for multiclass models."""
    if all(name in oof.columns for name in names):
        return oof[names].to_numpy()
    return np.stack([oof[_class_columns(oof, name)].to_numpy() for name in names], axis=1)


def _class_columns(oof: pd.DataFrame, name: str) -> list[str]:
    columns: list[str] = []
    while f"{name}_{len(columns)}" in oof.columns:
        columns.append(f"{name}_{len(columns)}")
    return columns


def _common_task(models: dict[str, Any]) -> str:
    """The task every base model was trained for; BadInput naming the steps when they differ."""
    tasks = {name: getattr(model, "task", "binary") for name, model in models.items()}
    if len(set(tasks.values())) > 1:
        listed = ", ".join(f"'{name}' ({task})" for name, task in tasks.items())
        raise BadInput(f"ensemble.stack combines models of one task, but its inputs differ: {listed}; "
                       "give every model step the same data step")
    return next(iter(tasks.values()))


def aligned_oof(bases: dict[str, dict[str, Any]], task: str = "binary") -> pd.DataFrame:
    """One row per data-table row: `row`, `fold`, `y` and one prediction column per base step.

    BadInput naming both steps when two bases differ in rows, folds or labels: their
    predictions would not be comparable out of fold.
    """
    frames = {name: _step_oof(name, manifest) for name, manifest in bases.items()}
    first, reference = next(iter(frames.items()))
    for name, frame in frames.items():
        problem = _mismatch(reference, frame)
        if problem:
            raise BadInput(f"ensemble.stack: steps '{first}' and '{name}' did not predict the same folds ({problem}); "
                           "give both the same data step, shards and seed")
    combined = reference[["row", "fold", "y"]].copy()
    for name, frame in frames.items():
        for column in metrics.prediction_names(frame):  # pred, or pred_0 .. pred_{k-1} of a multiclass model
            combined[name + column[4:]] = frame[column].to_numpy()
    if task == "binary" and not combined["y"].isin([0, 1]).all():
        raise BadInput(f"ensemble.stack: the models of step '{first}' are binary classifiers, but its labels are "
                       "not 0/1; for a numeric target give the data step task: regression")
    return combined


def _step_oof(name: str, manifest: dict[str, Any]) -> pd.DataFrame:
    parts = [artifacts.read_parquet(shard["outputs"]["oof"]).assign(fold=shard["shard_index"])
             for shard in manifest.get("shards", []) if "oof" in shard.get("outputs", {})]
    frame = pd.concat(parts, ignore_index=True)
    if frame["row"].duplicated().any():
        raise BadInput(f"ensemble.stack: the out-of-fold predictions of step '{name}' overlap: not disjoint folds")
    return frame.sort_values("row", ignore_index=True)


def _mismatch(a: pd.DataFrame, b: pd.DataFrame) -> str | None:
    if len(a) != len(b) or not np.array_equal(a["row"].to_numpy(), b["row"].to_numpy()):
        return f"{len(a)} vs {len(b)} out-of-fold rows, not the same row positions"
    moved = int((a["fold"].to_numpy() != b["fold"].to_numpy()).sum())
    if moved:
        return f"{moved} rows fall in a different fold"
    if not np.array_equal(a["y"].to_numpy(), b["y"].to_numpy()):
        return "different labels for the same rows"
    return None


def _cross_validated_stack(probabilities: np.ndarray, y: np.ndarray, folds: np.ndarray, C: float,
                           seed: int) -> tuple[np.ndarray, list[float], float]:
    """Out-of-fold predictions of the combiner on the bases' folds, then the combiner refit on every row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    X = logit(probabilities)
    if len(np.unique(folds)) < 2:  # a single holdout fold (shards: 1): cross-validate inside it
        folds = np.empty(len(y), dtype=np.int64)
        for fold, (_, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)):
            folds[test] = fold
    ensemble = np.empty(len(y))
    for fold in np.unique(folds):
        test = folds == fold
        combiner = LogisticRegression(C=C).fit(X[~test], y[~test])
        ensemble[test] = combiner.predict_proba(X[test])[:, 1]
    final = LogisticRegression(C=C).fit(X, y)
    return ensemble, [float(w) for w in final.coef_[0]], float(final.intercept_[0])


def _cross_validated_linear(predictions: np.ndarray, y: np.ndarray, folds: np.ndarray, C: float,
                            seed: int) -> tuple[np.ndarray, list[float], float]:
    """Regression: a linear model with non-negative weights on the bases' predictions, cross-validated
    on their folds like the binary stack (C is a classifier's setting and plays no part here)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold

    if len(np.unique(folds)) < 2:  # a single holdout fold (shards: 1): cross-validate inside it
        folds = np.empty(len(y), dtype=np.int64)
        for fold, (_, test) in enumerate(KFold(5, shuffle=True, random_state=seed).split(predictions)):
            folds[test] = fold
    ensemble = np.empty(len(y))
    for fold in np.unique(folds):
        test = folds == fold
        ensemble[test] = LinearRegression(positive=True).fit(predictions[~test], y[~test]).predict(predictions[test])
    final = LinearRegression(positive=True).fit(predictions, y)
    return ensemble, [float(w) for w in final.coef_], float(final.intercept_)


def _average_weights(given: dict[str, float] | None, names: list[str]) -> np.ndarray:
    if given is None:
        return np.full(len(names), 1 / len(names))
    unknown = sorted(set(given) - set(names))
    missing = [name for name in names if name not in given]
    if unknown or missing:
        raise BadInput(f"ensemble.stack params.weights must name each input model step ({', '.join(names)}): "
                       + "; ".join(filter(None, [unknown and f"unknown {unknown}", missing and f"missing {missing}"])))
    weights = np.array([given[name] for name in names], dtype="float64")
    if (weights < 0).any() or weights.sum() <= 0:
        raise BadInput("ensemble.stack params.weights must be non-negative with a positive sum")
    return weights / weights.sum()


# --- plots ---------------------------------------------------------------------------------

def _write_plots(request: StepRequest, manifests: dict[str, dict[str, Any]], model: StackedModel,
                 oof: pd.DataFrame, predictions: dict[str, np.ndarray]) -> dict[str, str]:
    y = oof["y"].to_numpy()
    outputs = {
        "roc": artifacts.write_bytes(request.shard_path("roc.png"), plots.roc(y, predictions)),
        "calibration": artifacts.write_bytes(request.shard_path("calibration.png"), plots.calibration(y, predictions)),
    }
    drops = _importance(request, manifests, model, oof)
    if drops is not None:
        outputs["importance"] = artifacts.write_bytes(request.shard_path("importance.png"), plots.importance(drops))
    return outputs


def _importance(request: StepRequest, manifests: dict[str, dict[str, Any]], model: StackedModel,
                oof: pd.DataFrame) -> dict[str, float] | None:
    """Permutation importance of the whole ensemble in the raw table's columns, on a sample of rows
    (the models take raw table rows and convert them themselves, so a shuffled string column stays a string column).

    Needs the data step among the inputs (`needs: [data, ...]`): the out-of-fold rows point
    into its table. Without it there is no importance plot (said in the log).
    """
    table = next((m for m in manifests.values() if artifacts.step_output_uris(m, "features")), None)
    if table is None:
        print("ensemble.stack: no data step among the inputs (one with a 'features' output): "
              "no importance.png; add the data step to `needs` for it")
        return None
    settings = request.settings
    rng = np.random.default_rng(settings.seed)
    sample = oof.iloc[np.sort(rng.choice(len(oof), size=min(settings.importance_rows, len(oof)), replace=False))]
    rows = read_features(table).iloc[sample["row"].to_numpy()].reset_index(drop=True)
    columns = [c for c in model.feature_names if c in rows.columns]
    return permutation_auc_drop(model, rows, sample["y"].to_numpy(), columns, settings.importance_repeats, settings.seed)
