"""ensemble.stack for multiclass models: their (rows, bases, classes) out-of-fold probabilities.

"stack" fits a multinomial logistic regression on every base's log-probabilities, itself
cross-validated on the bases' folds like the binary stack; its weights are kept as a
(bases, classes in, classes out) array, so StackedModel applies it without sklearn.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from workers.tabular.stacked import EPS


def log_probabilities(probabilities: Any) -> np.ndarray:
    """(rows, bases * classes) features of the combiner: each base's clipped log-probabilities."""
    p = np.asarray(probabilities, dtype="float64")
    return np.log(np.clip(p, EPS, 1.0)).reshape(len(p), -1)


def cross_validated_stack(probabilities: np.ndarray, y: np.ndarray, folds: np.ndarray, C: float,
                          seed: int) -> tuple[np.ndarray, list, list[float]]:
    """(the ensemble's out-of-fold probabilities, weights (bases, classes, classes), intercepts)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    rows, bases, classes = probabilities.shape
    X = log_probabilities(probabilities)
    if len(np.unique(folds)) < 2:  # a single holdout fold (shards: 1): cross-validate inside it
        folds = np.empty(rows, dtype=np.int64)
        for fold, (_, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)):
            folds[test] = fold
    ensemble = np.zeros((rows, classes))
    for fold in np.unique(folds):
        test = folds == fold
        combiner = LogisticRegression(C=C, max_iter=1000).fit(X[~test], y[~test])
        ensemble[np.ix_(test, combiner.classes_)] = combiner.predict_proba(X[test])
    final = LogisticRegression(C=C, max_iter=1000).fit(X, y)
    coef = np.zeros((classes, bases * classes))
    intercept = np.full(classes, -1e3)  # a class no row has: never predicted
    coef[final.classes_], intercept[final.classes_] = final.coef_, final.intercept_
    weights = coef.T.reshape(bases, classes, classes)
    return ensemble, weights.tolist(), intercept.tolist()


def combine(probabilities: Any, method: str, weights: Any, intercept: Any) -> np.ndarray:
    """The ensemble's (rows, classes) probabilities from the bases' (rows, bases, classes) ones."""
    from workers.tabular.mlp import softmax

    p = np.asarray(probabilities, dtype="float64")
    w = np.asarray(weights, dtype="float64")
    if method == "average":
        return np.einsum("rbk,b->rk", p, w)
    logits = np.asarray(intercept) + log_probabilities(p) @ w.reshape(-1, w.shape[-1])
    return softmax(logits)


def weight_shares(weights: Any, names: list[str]) -> dict[str, float]:
    """Each base's share of the combiner's absolute weight: how much the stack leans on it."""
    w = np.abs(np.asarray(weights, dtype="float64")).reshape(len(names), -1).sum(axis=1)
    total = w.sum() or 1.0
    return {name: float(share / total) for name, share in zip(names, w)}
