"""Model metrics that stay defined on awkward slices: binary (AUC, log loss), regression (RMSE, MAE)."""
from __future__ import annotations

from typing import Any


def auc(y: Any, p: Any) -> float | None:
    """ROC AUC, or None where it is undefined (fewer than two classes present)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, p))


def logloss(y: Any, p: Any) -> float | None:
    from sklearn.metrics import log_loss

    if len(y) == 0:
        return None
    return float(log_loss(y, p, labels=[0, 1]))


def rmse(y: Any, pred: Any) -> float | None:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(y, pred)) if len(y) else None


def mae(y: Any, pred: Any) -> float | None:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y, pred)) if len(y) else None


def scores(task: str, y: Any, pred: Any) -> dict[str, float | None]:
    """The metrics of a task: auc + logloss (binary, pred = probability of 1) or rmse + mae."""
    if task == "regression":
        return {"rmse": rmse(y, pred), "mae": mae(y, pred)}
    return {"auc": auc(y, pred), "logloss": logloss(y, pred)}
