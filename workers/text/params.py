"""Typed params of the text workers (corpus, embeddings, recommendations). Pydantic only."""
from typing import Literal

from pydantic import Field

from workers.params_base import Params as _Params


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
