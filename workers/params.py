"""Typed params of the table workers. Pydantic only: imported at DAG parse time by a batch that
uses one of them (the check and text workers keep theirs beside them: a batch imports only what it uses).

No `from __future__ import annotations` here: pydantic would evaluate every annotation from its
string again, on every DAG parse."""
from typing import Literal

from pydantic import Field, model_validator

from workers.params_base import Params as _Params


class FeaturesParams(_Params):
    rows: int = Field(10_000, gt=0, description="synthetic rows to generate (ignored with source)")
    seed: int = Field(7, description="random seed; same seed, same data")
    source: str | None = Field(None, description="CSV or Parquet path/URI to read instead of generating",
                               json_schema_extra={"mlbatch_input": "file"})  # its content is in the cache key


class ColumnsParams(_Params):
    include: list[str] | None = Field(None, description="feature columns to keep (the label and id always stay)")
    exclude: list[str] | None = Field(None, description="feature columns to drop")

    @model_validator(mode="after")
    def _one_of(self) -> "ColumnsParams":
        if self.include is not None and self.exclude is not None:
            raise ValueError("give columns.include or columns.exclude, not both")
        return self


class TableParams(_Params):
    source: str = Field(..., description="CSV or Parquet file, any fsspec URI (s3://..., a local path)",
                        json_schema_extra={"mlbatch_input": "file"})  # its content is in the cache key
    label: str | None = Field(None, description="the target column (none: a table to score)")
    id: str | None = Field(None, description="the id column (none: row_id, the row number, is added)")
    task: Literal["binary", "multiclass", "regression"] | None = Field(
        None, description="binary: label of 0/1 (or true/false, or see positive); multiclass: one class per label "
                          "value (text or whole numbers); regression: numeric label; left out: told by the label "
                          "(workers.tabular.label_task)")
    positive: str | int | bool | None = Field(None, description="binary: the label value that counts as 1 "
                                                                "(for labels like yes/no)")
    columns: ColumnsParams | None = Field(None, description="{include: [...]} or {exclude: [...]} feature columns")
    categorical: list[str] = Field([], description="columns to treat as categorical whatever their type")
    numeric: list[str] = Field([], description="columns to treat as numeric whatever their cardinality")
    max_int_categories: int = Field(10, ge=0, description="an integer column with at most this many distinct "
                                                          "values is categorical (0: integers are numeric)")
    max_categories: int = Field(100, ge=1, le=254, description="categories kept per column, the most frequent; "
                                                               "rarer values count as missing")


class TrainParams(_Params):
    max_iter: int = Field(100, gt=0, description="boosting iterations")
    learning_rate: float = Field(0.1, gt=0, le=1)
    max_depth: int | None = Field(None, gt=0)
    max_leaf_nodes: int = Field(31, gt=1)
    seed: int = Field(7, description="fold split and model seed; model steps with the same seed share folds")


class MLPParams(_Params):
    hidden: list[int] = Field([64, 32], min_length=1, description="units of each hidden layer")
    dropout: float = Field(0.1, ge=0, lt=1)
    embedding_dim: int = Field(8, gt=0, le=64, description="largest embedding size of a categorical column")
    epochs: int = Field(50, gt=0, description="most epochs; early stopping usually ends sooner")
    patience: int = Field(5, gt=0, description="stop after this many epochs without a better validation loss")
    batch_size: int = Field(256, gt=0, le=65536)
    learning_rate: float = Field(0.003, gt=0, le=1)
    weight_decay: float = Field(1e-5, ge=0)
    valid_fraction: float = Field(0.1, gt=0, lt=0.5, description="share of the fold's training rows held out "
                                                                 "for early stopping (the out-of-fold rows stay unseen)")
    seed: int = Field(7, description="fold split, initial weights and batch order; same seed on CPU, same model")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: the GPU when the step asks for one "
                                                                       "(resources.gpu) and one is present")


class EnsembleParams(_Params):
    pass


class StackParams(_Params):
    method: Literal["stack", "average"] = Field(
        "stack", description="stack: logistic regression on the models' out-of-fold logits, itself cross-validated "
                             "on the same folds; average: weighted mean of the models' probabilities")
    weights: dict[str, float] | None = Field(None, description="average: weight of each input model step "
                                                               "(step name -> weight; default: equal)")
    C: float = Field(1.0, gt=0, description="stack: inverse L2 strength of the logistic regression")
    plots: bool = Field(True, description="write roc.png, calibration.png and importance.png")
    importance_rows: int = Field(1000, gt=0, description="rows sampled for the permutation importance (speed)")
    importance_repeats: int = Field(2, gt=0, le=20, description="shuffles per feature in the permutation importance")
    seed: int = Field(7, description="seed of the importance sample and shuffles")


class PredictParams(_Params):
    threshold: float = Field(0.5, ge=0, le=1, description="score at or above which a row is flagged")
    model: str | None = Field(None, description="'BATCH.STEP': score with that step's latest committed model "
                                                 "instead of a model among this step's inputs",
                              json_schema_extra={"mlbatch_input": "latest"})  # the model it points at is in the cache key


class DriftParams(_Params):
    reference: str = Field(..., description="the table to compare with: 'BATCH.STEP' (that step's latest committed "
                                            "output, e.g. the training features) or the name of an input step",
                           json_schema_extra={"mlbatch_input": "latest"})  # what it points at is in the cache key
    method: Literal["psi", "ks"] = Field("psi", description="psi: population stability index over reference "
                                                            "quantile bins; ks: Kolmogorov-Smirnov statistic")
    bins: int = Field(10, ge=2, le=100, description="psi: quantile bins of the reference")
    columns: list[str] | None = Field(None, description="numeric columns to compare (default: every numeric "
                                                        "feature both tables have)")
