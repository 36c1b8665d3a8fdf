"""A folder of many generated batches, shaped like the examples, for the parse benchmark.

Three shapes in turn: a training batch (features -> sharded GBDT and MLP -> stack with a gate
-> sharded scoring), a scoring batch scheduled after an earlier training batch's ensemble and
on a cron, and an embedding batch. Backends, schedules, alerts and shard counts vary by a seeded
random generator, so a run writes the same folder every time. Every third spec sets its own
`dag_id` different from its file name: the case where each parse has to look at its siblings
to find who else claims that dag id.
"""
from __future__ import annotations

import random
from pathlib import Path

from mlbatch.cli.scaffold import loader_source

SHAPES = ("training", "scoring", "embedding")
BACKENDS = ("local", "local", "docker", "batch", "ecs")
CRONS = ("0 3 * * *", "30 4 * * 1-5", "@daily", "@hourly", "15 */6 * * *")


def write_batches(dags_dir: Path, count: int, seed: int = 7) -> list[Path]:
    """Write `count` specs under dags_dir/specs and one loader each; the loaders, in order."""
    rng = random.Random(seed)
    (dags_dir / "specs").mkdir(parents=True, exist_ok=True)
    trainings: list[str] = []  # dag ids of the training batches written so far
    loaders = []
    for index in range(count):
        shape = SHAPES[index % len(SHAPES)]
        name = f"gen_{index:04d}_{shape}"
        dag_id = f"team{index % 9}_{shape}_{index:04d}" if index % 3 == 1 else name
        upstream = rng.choice(trainings) if trainings else None
        text = _spec(shape, name, dag_id, rng, upstream)
        (dags_dir / "specs" / f"{name}.yaml").write_text(text, encoding="utf-8")
        loader = dags_dir / f"{name}.py"
        loader.write_text(loader_source(name), encoding="utf-8")
        loaders.append(loader)
        if shape == "training":
            trainings.append(dag_id)
    return loaders


def _spec(shape: str, name: str, dag_id: str, rng: random.Random, upstream: str | None) -> str:
    header = [f"# {name}: a generated {shape} batch"]
    if dag_id != name:
        header.append(f"dag_id: {dag_id}")
    header += [f"description: Generated {shape} batch {name}", f"schedule: {_schedule(shape, rng, upstream)}",
               f"owner: team-{rng.randrange(9)}", f"tags: [generated, {shape}]"]
    if rng.random() < 0.5:
        header += ["alerts:", "  slack: slack_ml_alerts", "  on: [failure, retry]"]
    backend = rng.choice(BACKENDS if shape != "embedding" else BACKENDS[:-1])  # Fargate has no GPU
    header += ["defaults:", f"  backend: {backend}", f"  resources: {{vcpu: 1, memory: {rng.choice((2, 4))}Gi}}",
               f"  retries: {rng.randrange(4)}", "  retry_delay: 1m", f"  timeout: {rng.choice((20, 30, 60))}m",
               "steps:"]
    body = {"training": _training, "scoring": _scoring, "embedding": _embedding}[shape](rng, upstream)
    return "\n".join(header + body) + "\n"


def _schedule(shape: str, rng: random.Random, upstream: str | None) -> str:
    if shape == "scoring" and upstream:
        return f'{{after: [{upstream}.ensemble], cron: "{rng.choice(CRONS[:2])}"}}'
    choice = rng.choice((None, *CRONS))
    return "null" if choice is None else f'"{choice}"'


def _training(rng: random.Random, upstream: str | None) -> list[str]:
    folds = rng.randrange(2, 8)
    return [
        "  features:", "    run: features.synthetic", f"    params: {{rows: {rng.randrange(1, 50) * 10_000}, seed: 7}}",
        "  train:", "    run: train.gbdt", "    needs: [features]", f"    shards: {folds}",
        f"    params: {{max_iter: {rng.choice((50, 100, 150))}, learning_rate: 0.1}}",
        "  train_mlp:", "    run: train.mlp", "    needs: [features]", f"    shards: {folds}",
        "    params: {hidden: [64, 32], epochs: 8}",
        "  ensemble:", "    run: ensemble.stack", "    needs: [features, train, train_mlp]",
        f"    gate: {{metric: auc, min: {rng.choice((0.7, 0.75, 0.8))}}}",
        "  score:", "    run: predict.batch", "    needs: [ensemble, features]",
        "    shards: {per: 50000, of: features.rows, max: 100}",
    ]


def _scoring(rng: random.Random, upstream: str | None) -> list[str]:
    # a scoring batch always follows a training one (shapes come in turn), so `upstream` is set
    lines = ["  features:", "    run: features.synthetic", f"    params: {{rows: {rng.randrange(1, 20) * 10_000}, seed: 11}}",
             "  score:", "    run: predict.batch", "    needs: [features]", f"    params: {{model: {upstream}.ensemble}}",
             "    shards: {per: 50000, of: features.rows, max: 20}"]
    if rng.random() < 0.5:
        lines += ["  drift:", "    run: drift.features", "    needs: [features]",
                  f"    params: {{reference: {upstream}.features}}"]
    return lines


def _embedding(rng: random.Random, upstream: str | None) -> list[str]:
    return [
        "  articles:", "    run: articles.corpus", f"    params: {{texts: {rng.randrange(1, 10) * 1000}, days: 7}}",
        "  history:", "    run: history.synthetic", "    needs: [articles]", "    params: {users: 2000, reads: 20}",
        "  embed:", "    run: embed.text", "    needs: [articles]", "    resources: {gpu: 1, memory: 3Gi}",
        "    shards: {per: 5000, of: articles.rows, max: 50}",
        "  recommend:", "    run: recommend.topk", "    needs: [embed, articles, history]",
        "    shards: {per: 1000, of: history.users, max: 20}",
    ]


PLAIN_DAG = '''"""A plain Airflow DAG of the same shape as a small batch: the parse-time reference."""
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="{dag_id}", schedule="0 3 * * *", start_date=datetime(2026, 1, 1), catchup=False,
         tags=["plain"], default_args={{"owner": "ml-platform", "retries": 2}}) as dag:
    features, train, ensemble, score = (EmptyOperator(task_id=name) for name in ("features", "train", "ensemble", "score"))
    features >> train >> ensemble >> score
'''


def write_plain_dags(dags_dir: Path, count: int) -> list[Path]:
    """`count` plain Airflow DAG files of four EmptyOperators: what any DAG file costs to parse."""
    files = []
    for index in range(count):
        path = dags_dir / f"plain_{index:03d}.py"
        path.write_text(PLAIN_DAG.format(dag_id=f"plain_{index:03d}"), encoding="utf-8")
        files.append(path)
    return files
