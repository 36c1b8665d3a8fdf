"""Binary classification metrics that stay defined on awkward slices."""
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
