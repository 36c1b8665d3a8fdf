"""The ensemble model of ensemble.stack, pickled into its `model` output.

Free of heavy imports at module level: unpickling a model imports this module.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from workers.tabular.models import TabularModel, predict_scores

EPS = 1e-6  # probabilities are clipped before the logit so 0 and 1 stay finite


def logit(p: Any) -> Any:
    import numpy as np

    p = np.clip(np.asarray(p, dtype="float64"), EPS, 1 - EPS)
    return np.log(p / (1 - p))


class StackedModel(TabularModel):
    """Several model steps combined on their probability of class 1 (binary) or their prediction (regression).

    Binary, method "stack": sigmoid(intercept + sum coef_j * logit(p_j)), the logistic regression
    fitted on the out-of-fold predictions; regression, method "stack": intercept + sum coef_j * y_j,
    the linear regression on them; method "average": sum weight_j * p_j (or y_j). Multiclass:
    the same on each base's row of class probabilities (workers.tabular.multistack).
    Each base is whatever its step scores with (the average of its fold models); every
    base gets the same raw table rows and selects and converts its own columns.
    """

    def __init__(self, bases: Mapping[str, Any], method: str, weights: Sequence[float], intercept: float = 0.0):
        if not bases:
            raise ValueError("StackedModel needs at least one base model")
        if len(weights) != len(bases):
            raise ValueError(f"{len(bases)} base models but {len(weights)} weights")
        if method not in ("stack", "average"):
            raise ValueError(f"unknown method {method!r}")
        self.bases = dict(bases)
        self.method = method
        self.weights = [w if isinstance(w, list) else float(w) for w in weights]  # multiclass stack: matrices
        self.intercept = intercept if isinstance(intercept, list) else float(intercept)
        # the schema predict.batch checks a scoring table against: the first base's (every base
        # still checks its own columns when it scores)
        self.schema = next((m.schema for m in self.bases.values() if getattr(m, "schema", None) is not None), None)

    @property
    def task(self) -> str:
        return self.schema.task if self.schema is not None else "binary"

    @property
    def feature_names(self) -> list[str]:
        """The raw feature columns any base model reads, in first-seen order."""
        names: list[str] = []
        for model in self.bases.values():
            for name in _feature_names(model):
                if name not in names:
                    names.append(name)
        return names

    def base_predictions(self, X: Any) -> Any:
        """(rows, bases) probabilities of class 1 (or predictions), one column per base step."""
        import numpy as np

        each = [np.asarray(predict_scores(m, X), dtype="float64") for m in self.bases.values()]
        return np.stack(each, axis=1) if self.task == "multiclass" else np.column_stack(each)

    def combine(self, probabilities: Any) -> Any:
        """The ensemble's probability of class 1 (or prediction) from the bases' (rows, bases) columns."""
        import numpy as np

        if self.task == "multiclass":
            from workers.tabular import multistack

            return multistack.combine(probabilities, self.method, self.weights, self.intercept)
        w = np.asarray(self.weights)
        if self.method == "average":
            return np.asarray(probabilities) @ w
        if self.task == "regression":
            return self.intercept + np.asarray(probabilities, dtype="float64") @ w
        return 1 / (1 + np.exp(-(self.intercept + logit(probabilities) @ w)))

    def score(self, df: Any) -> Any:
        return self.combine(self.base_predictions(df))

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={w:.3g}" if isinstance(w, float) else name for name, w in zip(self.bases, self.weights))
        return f"StackedModel({self.method}: {parts})"


def _feature_names(model: Any) -> list[str]:
    return list(getattr(model, "feature_names", None) or [])
