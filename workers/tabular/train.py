"""train.gbdt: gradient boosting, one cross-validation fold per shard."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, train_test_split

from workers import artifacts

from workers.tabular import metrics
from workers.errors import BadInput
from workers.tabular.features import ID, LABEL, read_features, to_matrix
from workers.request import ShardResult, StepRequest


def gbdt(request: StepRequest) -> ShardResult:
    """Shard i of n >= 2 trains on every fold but i and predicts fold i (out-of-fold);
    with n == 1 it trains on 80% and predicts a 20% holdout."""
    settings = request.settings
    df = read_features(request.input_with("features"))
    if LABEL not in df.columns:
        raise BadInput(f"train.gbdt needs the label column '{LABEL}' in its features")
    y = df[LABEL].to_numpy()
    train_idx, test_idx = _split(y, request.shard_index, request.shard_count, settings.seed)

    model = HistGradientBoostingClassifier(
        max_iter=settings.max_iter,
        learning_rate=settings.learning_rate,
        max_depth=settings.max_depth,
        max_leaf_nodes=settings.max_leaf_nodes,
        early_stopping=False,  # a fold must not depend on an inner random split
        random_state=settings.seed,
    )
    X = to_matrix(df)
    model.fit(X.iloc[train_idx], y[train_idx])
    pred = model.predict_proba(X.iloc[test_idx])[:, 1]

    oof = pd.DataFrame({"row": test_idx.astype(np.int64), ID: df[ID].to_numpy()[test_idx],
                        "y": y[test_idx], "pred": pred})
    outputs = {
        "model": artifacts.write_joblib(request.shard_path("model.joblib"), model),
        "oof": artifacts.write_parquet(request.shard_path("oof.parquet"), oof),
    }
    return ShardResult(
        counts={"train_rows": len(train_idx), "oof_rows": len(test_idx)},
        metrics={"auc": metrics.auc(y[test_idx], pred), "logloss": metrics.logloss(y[test_idx], pred)},
        outputs=outputs,
    )


def _split(y: np.ndarray, shard: int, shards: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(len(y))
    try:
        if shards == 1:
            train_idx, test_idx = train_test_split(rows, test_size=0.2, stratify=y, random_state=seed)
            return np.sort(train_idx), np.sort(test_idx)
        folds = StratifiedKFold(n_splits=shards, shuffle=True, random_state=seed)
        return list(folds.split(rows, y))[shard]
    except ValueError as exc:  # too few rows or positives for the folds asked for
        raise BadInput(f"cannot split {len(y)} rows into {shards} stratified fold(s): {exc}") from None
