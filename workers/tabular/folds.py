"""The cross-validation folds every model step uses: same data, shards and seed -> same folds.

Shard i of n >= 2 trains on every fold but i and predicts fold i (its out-of-fold rows);
with n == 1 it trains on 80% and predicts a 20% holdout. Class labels (binary, multiclass) are stratified.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from workers.errors import BadInput

CLASSES = ("binary", "multiclass")  # tasks whose folds keep each class's share


def split(y: Any, shard: int, shards: int, seed: int, task: str = "binary") -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) of shard `shard`, both sorted row positions."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    y = np.asarray(y)
    rows = np.arange(len(y))
    stratify = y if task in CLASSES else None
    try:
        if shards == 1:
            train_idx, test_idx = train_test_split(rows, test_size=0.2, stratify=stratify, random_state=seed)
            return np.sort(train_idx), np.sort(test_idx)
        folds = (StratifiedKFold if task in CLASSES else KFold)(n_splits=shards, shuffle=True, random_state=seed)
        train_idx, test_idx = list(folds.split(rows, stratify if stratify is not None else rows))[shard]
        return train_idx, test_idx
    except ValueError as exc:  # too few rows (or positives) for the folds asked for
        kind = "stratified " if task in CLASSES else ""
        raise BadInput(f"cannot split {len(y)} rows into {shards} {kind}fold(s): {exc}; use fewer shards "
                       f"or more rows") from None


def holdout(y: Any, fraction: float, seed: int, task: str = "binary") -> tuple[np.ndarray, np.ndarray]:
    """Positions (into y) of a (fit, valid) split: the inner validation rows of one fold."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    rows = np.arange(len(y))
    stratify = y if task in CLASSES else None
    try:
        fit, valid = train_test_split(rows, test_size=fraction, stratify=stratify, random_state=seed)
    except ValueError:  # too few of one class to stratify: a plain split still validates
        fit, valid = train_test_split(rows, test_size=fraction, random_state=seed)
    return np.sort(fit), np.sort(valid)
