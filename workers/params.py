"""Typed params of each worker. Pydantic only: imported at DAG parse time."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeaturesParams(_Params):
    rows: int = Field(10_000, gt=0, description="synthetic rows to generate (ignored with source)")
    seed: int = Field(7, description="random seed; same seed, same data")
    source: str | None = Field(None, description="CSV or Parquet path/URI to read instead of generating",
                               json_schema_extra={"mlbatch_input": "file"})  # its content is in the cache key


class TrainParams(_Params):
    max_iter: int = Field(100, gt=0, description="boosting iterations")
    learning_rate: float = Field(0.1, gt=0, le=1)
    max_depth: int | None = Field(None, gt=0)
    max_leaf_nodes: int = Field(31, gt=1)
    seed: int = 7


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


class NoopParams(_Params):
    pass


class SleepParams(_Params):
    seconds: float = Field(1.0, ge=0)


class MemoryParams(_Params):
    mib: int = Field(..., gt=0, description="resident memory to allocate and touch")
    hold_seconds: float = Field(1.0, ge=0)


class FailParams(_Params):
    fail_tries: int = Field(1_000_000, ge=0, description="fail while the try number is at most this")
    fail_shards: list[int] | None = Field(None, description="only these shards fail (default: all)")
    bad_input: bool = Field(False, description="fail as bad input (exit 65) instead of a crash")
    message: str = "requested failure"
    print_env: list[str] = Field([], description="environment variables to print to stderr first")


# --- text embedding and recommendation (GPU batches) ----------------------------------------

class CorpusParams(_Params):
    texts: int = Field(10_000, gt=0, description="articles to build (fewer if the packages hold fewer docstrings)")
    packages: list[str] = Field(["numpy", "pandas", "sklearn", "scipy", "torch", "pyarrow"], min_length=1,
                                description="installed packages whose docstrings become the articles")
    days: int = Field(7, gt=0, description="spread the articles over this many publication days")
    min_chars: int = Field(80, gt=0, description="skip docstrings shorter than this")
    max_chars: int = Field(1200, gt=0, description="cut article text at this many characters")


class HistoryParams(_Params):
    users: int = Field(1000, gt=0, description="synthetic readers")
    reads: int = Field(20, gt=0, description="mean articles read per user")
    seed: int = Field(7, description="random seed; same seed, same history")


class EmbedParams(_Params):
    table: str = Field("articles", description="output key of the input step that holds the texts")
    column: str = Field("text", description="text column to embed")
    id_column: str = Field("article_id", description="id column copied to the output")
    batch_size: int = Field(64, gt=0, le=4096)
    max_seq_length: int = Field(256, gt=0, le=512, description="tokens kept per text (the model's limit is 256)")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="autocast on GPU: auto = fp16 (bf16 where supported); CPU always runs fp32")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: the GPU when one is present")


class RecommendParams(_Params):
    k: int = Field(10, gt=0, le=1000, description="articles recommended per user")
    history: int = Field(20, gt=0, description="the user's most recent reads that make up their profile")
    day: str | None = Field(None, description="candidate day (YYYY-MM-DD); default: the newest day of the articles")
