"""The article_recommendation batch, made small, end to end through real Airflow (`airflow dags test`).

A few hundred articles, embedded in 2 shards by the real model (shard count sized at run time
from the articles step's row count), recommendations in 2 shards of users; then a second run
of the same spec, which the cache answers without launching a worker.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlbatch.cli.report import collect
from tests.integration.airflow_run import dags_test, migrate_db, write_batch
from workers import artifacts
from workers.text.embed import read_vectors

pytestmark = pytest.mark.slow

TEXTS = 300
USERS = 40
SPEC = f"""
    defaults: {{retries: 0, resources: {{vcpu: 1, memory: 2Gi}}}}
    steps:
      articles:
        run: articles.corpus
        params: {{texts: {TEXTS}, max_chars: 300}}
      history:
        run: history.synthetic
        needs: [articles]
        params: {{users: {USERS}, reads: 8}}
      embed:
        run: embed.text
        needs: [articles]
        params: {{batch_size: 32, max_seq_length: 96}}
        resources: {{gpu: 1}}
        shards: {{per: 150, of: articles.rows, max: 8}}
      recommend:
        run: recommend.topk
        needs: [embed, articles, history]
        params: {{k: 5}}
        shards: {{per: 20, of: history.users}}
"""
WORKER_START = re.compile(r"mlbatch-worker start: (\S+) shard (\d+)/(\d+)")


@pytest.fixture(scope="module", autouse=True)
def _db():
    migrate_db()


def _summaries(dag_id: str) -> dict[str, dict]:
    report = collect(dag_id)
    assert [row.state for row in report.steps] == ["success"] * 4
    return {row.step: row.summary for row in report.steps}


def test_article_recommendation_small(tmp_path):
    root = tmp_path / "artifacts"
    env = {"MLBATCH_ARTIFACTS": str(root), "MLBATCH_LOCAL_VCPU": "2"}
    write_batch(tmp_path, "e2e_articles", SPEC)
    result = dags_test(tmp_path, "e2e_articles", env=env)
    assert result.returncode == 0, result.output[-5000:]
    steps = _summaries("e2e_articles")
    assert steps["embed"]["shard_count"] == 2  # 300 articles, 150 per shard
    assert steps["recommend"]["shard_count"] == 2  # 40 users, 20 per shard
    assert steps["embed"]["counts"]["rows"] == steps["articles"]["counts"]["rows"] == TEXTS

    embed_manifest = artifacts.read_step_manifest(steps["embed"]["uri"])
    ids, vectors = read_vectors(embed_manifest)
    assert ids.tolist() == list(range(1, TEXTS + 1))
    assert vectors.shape == (TEXTS, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for shard in embed_manifest["shards"]:
        assert shard["metrics"]["dim"] == 384 and shard["metrics"]["model_load_s"] > 0
    if all(s["metrics"]["device"] == "cpu" for s in embed_manifest["shards"]):
        assert "GPU fallback: the step asks for 1 GPU" in result.output

    rec_manifest = artifacts.read_step_manifest(steps["recommend"]["uri"])
    recs = pd.concat([artifacts.read_parquet(u) for u in artifacts.step_output_uris(rec_manifest, "recommendations")])
    reads = pd.concat([artifacts.read_parquet(u) for u in artifacts.step_output_uris(
        artifacts.read_step_manifest(steps["history"]["uri"]), "reads")])
    assert sorted(recs["user_id"].unique()) == sorted(reads["user_id"].unique())
    assert recs.groupby("user_id").size().max() == 5
    read_pairs = set(zip(reads["user_id"], reads["article_id"]))
    assert not any(pair in read_pairs for pair in zip(recs["user_id"], recs["article_id"]))

    # the same spec again: every step is a cache hit, no worker starts
    again = dags_test(tmp_path, "e2e_articles", env=env)
    assert again.returncode == 0, again.output[-5000:]
    assert WORKER_START.findall(again.output) == []
    cached = _summaries("e2e_articles")
    assert all(s["cache_hit"] for s in cached.values())
    assert cached["embed"]["key"] == steps["embed"]["key"]
