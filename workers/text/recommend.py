"""recommend.topk: the day's top-k articles per user, one contiguous slice of users per shard.

A user's profile is the mean of the embeddings of their `history` most recent reads,
normalised; an article's score is its cosine to the profile (the embeddings are unit length,
so a dot product). Candidates are the articles published on the day; what the user has read,
at any time, is never recommended. Ties go to the smaller article id, so reruns agree.

Inputs: a step that outputs `embeddings` (embed.text), one that outputs `articles` (ids,
`published`, optionally `topic`) and one that outputs `reads` (user_id, article_id, read_at).
Output: shard-NNNNN/recommendations.parquet with user_id, article_id, score, rank (1 = best).
"""
from __future__ import annotations

from typing import Any

from workers import artifacts
from workers.text.corpus import read_table
from workers.text.embed import read_vectors
from workers.errors import BadInput
from workers.tabular.predict import slice_bounds
from workers.request import ShardResult, StepRequest

USER_CHUNK = 2048  # users scored per matrix product: bounds memory at chunk x candidates floats


def topk(request: StepRequest) -> ShardResult:
    import numpy as np
    import pandas as pd

    s = request.settings
    ids, matrix = read_vectors(request.input_with("embeddings"))
    arts = read_table(request.input_with("articles"), "articles", ["article_id", "published"])
    reads = read_table(request.input_with("reads"), "reads", ["user_id", "article_id", "read_at"])
    if reads.empty:
        raise BadInput("recommend.topk: the 'reads' table is empty: no user to recommend to")

    days = pd.to_datetime(arts["published"]).dt.strftime("%Y-%m-%d")
    day = s.day or days.max()
    candidates = arts.loc[(days == day).to_numpy(), "article_id"].to_numpy()
    if len(candidates) == 0:
        raise BadInput(f"params.day {day}: no article was published that day (articles span "
                       f"{days.min()} .. {days.max()})")
    row_of = pd.Series(np.arange(len(ids)), index=ids)
    missing = np.setdiff1d(candidates, ids)
    if len(missing):
        raise BadInput(f"{len(missing)} article(s) of {day} have no embedding (e.g. id {missing[0]}): "
                       "the embeddings and the articles come from different tables")
    cand_ids = np.sort(candidates)
    cand = matrix[row_of[cand_ids].to_numpy()]
    cand_pos = pd.Series(np.arange(len(cand_ids)), index=cand_ids)

    users = np.sort(reads["user_id"].unique())
    start, stop = slice_bounds(len(users), request.shard_index, request.shard_count)
    mine = users[start:stop]
    reads = reads[reads["user_id"].isin(mine)].sort_values(["user_id", "read_at", "article_id"], kind="stable")
    unknown = ~reads["article_id"].isin(row_of.index)
    if unknown.any():
        raise BadInput(f"reads: article_id {reads.loc[unknown, 'article_id'].iloc[0]} (user "
                       f"{reads.loc[unknown, 'user_id'].iloc[0]}) has no embedding")

    recent = reads.groupby("user_id", sort=True).tail(s.history)
    k = min(s.k, len(cand_ids))
    frames = []
    for chunk_start in range(0, len(mine), USER_CHUNK):
        chunk = mine[chunk_start:chunk_start + USER_CHUNK]
        frames.append(_score_chunk(chunk, recent, reads, matrix, row_of, cand, cand_ids, cand_pos, k))
    recs = (pd.concat(frames, ignore_index=True) if frames else
            pd.DataFrame({"user_id": pd.Series(dtype="int64"), "article_id": pd.Series(dtype="int64"),
                          "score": pd.Series(dtype="float32"), "rank": pd.Series(dtype="int32")}))
    uri = artifacts.write_parquet(request.shard_path("recommendations.parquet"), recs)

    metrics: dict[str, Any] = {"day": day, "candidates": int(len(cand_ids)), "k": k,
                               "mean_top1_score": float(recs.loc[recs["rank"] == 1, "score"].mean())
                               if len(recs) else None}
    if "topic" in arts.columns and len(recs):
        metrics["topic_hit_rate"] = _topic_hit_rate(recs, reads, arts)
    return ShardResult(counts={"users": int(len(mine)), "rows": int(len(recs))}, metrics=metrics,
                       outputs={"recommendations": uri})


def _score_chunk(users, recent, reads, matrix, row_of, cand, cand_ids, cand_pos, k):
    import numpy as np
    import pandas as pd

    sub = recent[recent["user_id"].isin(users)]
    user_pos = pd.Series(np.arange(len(users)), index=users)
    # profile = normalised mean of the recent reads' vectors (a sum, normalised, points the same way)
    profiles = np.zeros((len(users), matrix.shape[1]), dtype=np.float32)
    np.add.at(profiles, user_pos[sub["user_id"]].to_numpy(), matrix[row_of[sub["article_id"]].to_numpy()])
    norms = np.linalg.norm(profiles, axis=1, keepdims=True)
    profiles /= np.where(norms > 0, norms, 1)
    scores = profiles @ cand.T  # users x candidates: cosine
    # never recommend what the user has read, whenever they read it
    seen = reads[reads["user_id"].isin(users) & reads["article_id"].isin(cand_pos.index)]
    scores[user_pos[seen["user_id"]].to_numpy(), cand_pos[seen["article_id"]].to_numpy()] = -np.inf

    kk = min(k, scores.shape[1])
    top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < scores.shape[1] else \
        np.tile(np.arange(scores.shape[1]), (len(users), 1))
    top_scores = np.take_along_axis(scores, top, axis=1)
    # order within the top: score descending, then article id ascending (candidates are sorted by id)
    order = np.lexsort((top, -top_scores), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1)
    keep = np.isfinite(top_scores)  # a user who read every candidate gets fewer than k
    ranks = np.broadcast_to(np.arange(1, kk + 1, dtype=np.int32), top.shape)
    return pd.DataFrame({
        "user_id": np.repeat(users, kk).reshape(top.shape)[keep].astype("int64"),
        "article_id": cand_ids[top[keep]].astype("int64"),
        "score": top_scores[keep].astype("float32"),
        "rank": ranks[keep],
    })


def _topic_hit_rate(recs, reads, arts) -> float:
    """Share of recommendations whose topic the user has read before: a sanity check of relevance."""
    topic = arts.set_index("article_id")["topic"]
    read_topics = set(zip(reads["user_id"], topic.reindex(reads["article_id"]).to_numpy()))
    rec_topics = topic.reindex(recs["article_id"]).to_numpy()
    hits = sum((u, t) in read_topics for u, t in zip(recs["user_id"], rec_topics))
    return hits / len(recs)
