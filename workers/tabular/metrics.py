"""Model metrics that stay defined on awkward slices: binary and multiclass (AUC, log loss),
regression (RMSE, MAE).

A multiclass prediction is a (rows, classes) matrix of probabilities; its AUC is the macro
average of the one-vs-rest AUCs, its log loss the multinomial one. Out-of-fold files keep such
a matrix as columns pred_0 .. pred_{k-1} (`pred_columns`, `read_pred`), a single score as `pred`.
"""
from __future__ import annotations

from typing import Any


def auc(y: Any, p: Any) -> float | None:
    """ROC AUC (multiclass: macro one-vs-rest), or None where it is undefined (a class absent)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y, p = np.asarray(y), np.asarray(p)
    if p.ndim == 2:
        if len(np.unique(y)) < p.shape[1]:
            return None
        return float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=np.arange(p.shape[1])))
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, p))


def logloss(y: Any, p: Any) -> float | None:
    import numpy as np
    from sklearn.metrics import log_loss

    if len(y) == 0:
        return None
    p = np.asarray(p)
    return float(log_loss(y, p, labels=list(range(p.shape[1])) if p.ndim == 2 else [0, 1]))


def rmse(y: Any, pred: Any) -> float | None:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(y, pred)) if len(y) else None


def mae(y: Any, pred: Any) -> float | None:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y, pred)) if len(y) else None


def scores(task: str, y: Any, pred: Any) -> dict[str, float | None]:
    """The metrics of a task: auc + logloss (binary: pred = probability of 1; multiclass: the
    probability matrix) or rmse + mae."""
    if task == "regression":
        return {"rmse": rmse(y, pred), "mae": mae(y, pred)}
    return {"auc": auc(y, pred), "logloss": logloss(y, pred)}


def pred_columns(pred: Any) -> dict[str, Any]:
    """An out-of-fold file's prediction columns: `pred`, or pred_0 .. pred_{k-1} of a probability matrix."""
    import numpy as np

    pred = np.asarray(pred, dtype="float64")
    if pred.ndim == 1:
        return {"pred": pred}
    return {f"pred_{k}": pred[:, k] for k in range(pred.shape[1])}


def read_pred(frame: Any) -> Any:
    """The predictions `pred_columns` wrote: a vector, or the (rows, classes) matrix."""
    if "pred" in frame.columns:
        return frame["pred"].to_numpy()
    return frame[prediction_names(frame)].to_numpy()


def prediction_names(frame: Any) -> list[str]:
    """The prediction columns of an out-of-fold frame, in class order."""
    if "pred" in frame.columns:
        return ["pred"]
    return sorted((c for c in frame.columns if str(c).startswith("pred_")), key=lambda c: int(c[5:]))
