"""Model wrappers that are pickled into artifacts.

Kept free of heavy imports at module level: unpickling a model imports this
module, and the Airflow side may import it to inspect an artifact.
"""
from __future__ import annotations

from typing import Any, Sequence


class AveragedModel:
    """Average of the predicted probabilities of several fitted classifiers."""

    def __init__(self, models: Sequence[Any]):
        if not models:
            raise ValueError("AveragedModel needs at least one model")
        self.models = list(models)

    @property
    def classes_(self) -> Any:
        return self.models[0].classes_

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        return np.mean([m.predict_proba(X) for m in self.models], axis=0)

    def predict(self, X: Any) -> Any:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __repr__(self) -> str:
        return f"AveragedModel({len(self.models)} models)"
