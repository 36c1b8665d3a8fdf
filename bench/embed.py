"""embed.text throughput: the worker vs the bare model forward pass on the same batches.

Preparation (untimed): an articles.corpus step of TEXTS (500) docstring articles (as in the example
batch: up to 600 characters, 128 tokens kept), committed in a temporary artifact root.

In one process, REPETITIONS (4) pairs of runs, each side first in turn, after one untimed warm-up of each:
- worker: embed.text called as the runner calls it (read the input Parquet, slice, sort by
  length, tokenize, forward, normalise, put back in order, write Parquet, commit the shard);
  the model is already loaded (its load time is reported on its own row);
- bare forward: the same model on the same batches (same order, same padding), tokenized
  beforehand, timing only `model(features)` under torch.inference_mode (and autocast on GPU).
Then through LocalBackend, as a batch runs it: 1 shard vs 2 shards (1 vcpu each): fresh worker
processes, each importing torch and loading the model, so the wall time includes all of that.
On a machine with a GPU the in-process rows run on it (device auto); without one the GPU figure
is marked as not measured.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from mlbatch.backends.slots import LocalSlots
from workers import artifacts
from workers.request import StepRequest
from workers.runner import run as run_shard

from bench.stats import median
from bench.steps import in_process, through_local_backend

NAME = "embed.text throughput"
MEASURES = (
    "Texts per second of embed.text (all-MiniLM-L6-v2, docstring articles of up to 600 characters, "
    "128 tokens kept, batch 64) vs the bare model forward pass on the same batches in the same process "
    "(500 texts; 4 pairs of runs, each side first in turn; texts/s are medians, the ratio is the median of "
    "the pairs' ratios); the worker's figure counts everything the worker does except loading the model, "
    "whose time is its own row. Bottom rows: the step through LocalBackend with 1 and "
    "2 shards (1 vcpu each), fresh worker processes that import torch and load the model themselves."
)
TEXTS = 500
REPETITIONS = 4
PARAMS = {"batch_size": 64, "max_seq_length": 128}
CORPUS = {"texts": TEXTS, "max_chars": 600}


def run() -> dict:
    import torch

    from workers.text import embed

    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-embed-") as tmp:
        root = Path(tmp)
        articles = in_process(root / "articles", "articles.corpus", CORPUS, {})
        inputs = {"articles": articles}

        device, precision = embed.pick_device("auto", "auto", log=lambda line: None)
        began = time.perf_counter()
        model = embed.load_model(device)
        load_s = time.perf_counter() - began
        model.max_seq_length = PARAMS["max_seq_length"]
        corpus = artifacts.join(artifacts.shard_dir(str(articles), 0), "articles.parquet")
        texts = artifacts.read_parquet(corpus)["text"].tolist()
        tokenized = [embed.tokenize(model, [texts[i] for i in rows])
                     for rows in embed.batches([len(t) for t in texts], PARAMS["batch_size"])]
        tokenize_s = _tokenize_time(model, texts)

        worker_runs: list[dict] = []
        bare_s: list[float] = []
        _worker(inputs, str(root / "warm"))
        _bare(model, tokenized, device, precision)
        for i in range(REPETITIONS):  # pairs, each side first in turn: drift hits both
            if i % 2:
                bare_s.append(_bare(model, tokenized, device, precision))
            worker_runs.append(_worker(inputs, str(root / f"embed-{i}")))
            if not i % 2:
                bare_s.append(_bare(model, tokenized, device, precision))

        local = {n: _through_backend(inputs, str(root / f"local-{n}"), n) for n in (1, 2)}

    worker_s = median([r["wall_s"] for r in worker_runs])
    last = worker_runs[-1]["metrics"]
    bare = median(bare_s)
    return {
        "texts": TEXTS,
        "params": PARAMS,
        "device": device,
        "precision": precision,
        "torch_threads": torch.get_num_threads(),
        "gpu_measured": device == "cuda",
        "model_load_s": load_s,
        "worker_texts_per_s": TEXTS / worker_s,
        "worker_encode_texts_per_s": median([r["metrics"]["texts_per_s"] for r in worker_runs]),
        "bare_forward_texts_per_s": TEXTS / bare,
        "ratio": median([b / w["wall_s"] for b, w in zip(bare_s, worker_runs)]),  # median over the pairs
        "ratios": [b / w["wall_s"] for b, w in zip(bare_s, worker_runs)],
        "breakdown_s": {"worker_wall": worker_s, "bare_forward": bare, "tokenize": tokenize_s,
                        "read": last["read_s"], "write": last["write_s"],
                        "other": worker_s - bare - tokenize_s - last["read_s"] - last["write_s"],
                        "worker_encode": last["encode_s"]},
        "padding_share": last["padding_share"],
        "worker_s": [r["wall_s"] for r in worker_runs],
        "bare_s": bare_s,
        "local_vcpu_capacity": LocalSlots().capacity,
        "local": local,
    }


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["what", "texts/s", "detail"]
    where = f"{result['device']} ({result['precision']}, {result['torch_threads']} torch threads)"
    b = result["breakdown_s"]
    rows = [
        [f"bare model forward, same batches, {where}", round(result["bare_forward_texts_per_s"], 1),
         f"{b['bare_forward']:.2f} s for {result['texts']} texts; padding {result['padding_share']:.0%} of tokens"],
        [f"**embed.text worker**, in-process, {where}", round(result["worker_texts_per_s"], 1),
         f"**{result['ratio']:.2f} of the bare forward** (median of {len(result['ratios'])} pairs: "
         f"{', '.join(f'{r:.2f}' for r in result['ratios'])}); its {b['worker_wall']:.2f} s: tokenize "
         f"{b['tokenize']:.2f} s, read {b['read']:.2f} s, write {b['write']:.2f} s, the rest forward, "
         f"normalise, copy back and commit (bare forward alone {b['bare_forward']:.2f} s)"],
        ["model load (once per shard; not in the rows above)", "-", f"{result['model_load_s']:.2f} s"],
    ]
    for n, r in result["local"].items():
        rows.append([f"through LocalBackend, {n} shard(s) x 1 vcpu, cpu", round(r["texts_per_s"], 1),
                     f"wall {r['wall_s']:.1f} s incl. worker start and model load "
                     f"({', '.join(f'{s:.1f}' for s in r['model_load_s'])} s); "
                     f"encode alone {', '.join(f'{s:.0f}' for s in r['encode_texts_per_s'])} texts/s per shard"])
    if not result["gpu_measured"]:
        rows.append(["GPU", "-", "GPU figure not measured yet (no GPU on this machine)"])
    return headers, rows


def _worker(inputs: dict[str, str], output: str) -> dict:
    began = time.perf_counter()
    manifest = run_shard(StepRequest("embed.text", PARAMS, inputs, output))
    wall = time.perf_counter() - began - manifest["metrics"]["model_load_s"]  # ~0: loaded before
    if manifest["counts"]["rows"] != TEXTS:
        raise RuntimeError(f"embed.text embedded {manifest['counts']['rows']} of {TEXTS} texts")
    return {"wall_s": wall, "metrics": manifest["metrics"]}


def _bare(model, tokenized: list[dict], device: str, precision: str) -> float:
    import torch

    from workers.text.embed import autocast

    batches = [{k: v.to(device) if hasattr(v, "to") else v for k, v in f.items()} for f in tokenized]
    if device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    with torch.inference_mode(), autocast(device, precision):
        for features in batches:
            model(features)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - began


def _tokenize_time(model, texts: list[str]) -> float:
    from workers.text.embed import batches, tokenize

    began = time.perf_counter()
    for rows in batches([len(t) for t in texts], PARAMS["batch_size"]):
        tokenize(model, [texts[i] for i in rows])
    return time.perf_counter() - began


def _through_backend(inputs: dict[str, str], output: str, shards: int) -> dict:
    step = through_local_backend("embed.text", PARAMS, inputs, output, shards, memory_mib=3072)
    rows = step.manifest["counts"].get("rows")
    if rows != TEXTS:
        raise RuntimeError(f"embed.text with {shards} shard(s) embedded {rows} texts")
    return {
        "wall_s": step.wall_s,
        "texts_per_s": TEXTS / step.wall_s,
        "model_load_s": [s["metrics"]["model_load_s"] for s in step.manifest["shards"]],
        "encode_texts_per_s": [s["metrics"]["texts_per_s"] for s in step.manifest["shards"]],
    }
