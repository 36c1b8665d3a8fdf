"""Model objects pickled into artifacts: each holds its table schema and takes the RAW table.

`predict_proba(df)` (binary: columns P(0), P(1); multiclass: one column per class of
`schema.classes`) or `predict(df)` (regression; classifiers: the most likely class) select and
convert the columns themselves through `schema.frame`, so a scoring table only needs the
training columns, in any order, with any extra columns.

Kept free of heavy imports at module level: unpickling a model imports this module, and the
Airflow side may import it to inspect an artifact.
"""
from __future__ import annotations

from typing import Any, Sequence

from workers.tabular.schema import TableSchema


class TabularModel:
    """Base: subclasses implement `_predict(X)` on `schema.frame(df)`: P(1), the (rows, classes)
    probabilities of a multiclass model, or the prediction."""

    schema: TableSchema

    @property
    def feature_names(self) -> list[str]:
        return self.schema.features

    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def classes_(self) -> Any:
        import numpy as np

        return np.array(self.schema.classes) if self.task == "multiclass" else np.array([0, 1])

    def _predict(self, X: Any) -> Any:
        raise NotImplementedError

    def score(self, df: Any) -> Any:
        """P(1) for binary, the prediction for regression: one number per row; multiclass: a row of
        probabilities per row."""
        return self._predict(self.schema.frame(df, where="the scoring table"))

    def predict_proba(self, df: Any) -> Any:
        import numpy as np

        if self.task == "regression":
            raise TypeError(f"predict_proba: a {self.task} model predicts values; use predict")
        p = np.asarray(self.score(df), dtype="float64")
        if self.task == "multiclass":
            return p
        return np.column_stack([1 - p, p])

    def predict(self, df: Any) -> Any:
        import numpy as np

        score = np.asarray(self.score(df), dtype="float64")
        if self.task == "multiclass":
            return self.classes_[score.argmax(axis=1)]
        return (score >= 0.5).astype("int64") if self.task == "binary" else score


class GBDTModel(TabularModel):
    """A fitted HistGradientBoosting estimator; categoricals go in as pandas Categorical."""

    def __init__(self, schema: TableSchema, estimator: Any):
        self.schema = schema
        self.estimator = estimator

    def _predict(self, X: Any) -> Any:
        if self.task == "binary":
            return self.estimator.predict_proba(X)[:, 1]
        if self.task == "multiclass":
            return class_columns(self.estimator.predict_proba(X), self.estimator.classes_, len(self.schema.classes))
        return self.estimator.predict(X)

    def __repr__(self) -> str:
        return f"GBDTModel({self.task}, {len(self.feature_names)} features)"


class AveragedModel(TabularModel):
    """The mean of several models' P(1) (probabilities, predictions) on the same rows."""

    def __init__(self, models: Sequence[Any]):
        if not models:
            raise ValueError("AveragedModel needs at least one model")
        self.models = list(models)
        self.schema = self.models[0].schema

    def score(self, df: Any) -> Any:
        import numpy as np

        return np.mean([predict_scores(m, df) for m in self.models], axis=0)

    def __repr__(self) -> str:
        return f"AveragedModel({len(self.models)} models)"


def predict_scores(model: Any, df: Any) -> Any:
    """P(1), the (rows, classes) probabilities or the prediction of any model object with the
    contract's interface."""
    task = getattr(model, "task", "binary")
    if task == "regression" or not hasattr(model, "predict_proba"):
        return model.predict(df)
    proba = model.predict_proba(df)
    return proba if task == "multiclass" else proba[:, 1]


def class_columns(proba: Any, fitted: Any, classes: int) -> Any:
    """(rows, classes) probabilities from an estimator fitted on the class indices `fitted`: a
    class absent from a fold's training rows gets probability 0."""
    import numpy as np

    out = np.zeros((len(proba), classes))
    out[:, np.asarray(fitted, dtype="int64")] = proba
    return out


def step_model(manifest: dict[str, Any]) -> Any:
    """What a committed model step scores with: its one model, or the average of its fold models."""
    from workers import artifacts
    from workers.errors import BadInput

    models = [artifacts.read_joblib(uri) for uri in artifacts.step_output_uris(manifest, "model")]
    if not models:
        raise BadInput(f"input step at {manifest.get('step_uri')} has no 'model' outputs")
    for model in models:
        if getattr(model, "schema", None) is None:
            raise BadInput(f"the model of step {manifest.get('step_uri')} carries no table schema: it was trained "
                           f"by an older version; run its training batch again")
    return models[0] if len(models) == 1 else AveragedModel(models)
