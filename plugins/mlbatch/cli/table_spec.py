"""`mlbatch new NAME --source PATH --label COLUMN`: a starting spec for the user's own table.

The task comes from the label's values (workers.tabular.label_task, the rule table.load applies),
the id column from the header when one is obvious (a unique column named id or *_id); the
steps are a GBDT and an MLP on the same five folds, their stack and a scoring step.
"""
from __future__ import annotations

import re
from pathlib import Path

from mlbatch.spec.checks import did_you_mean

SPEC = '''# {name}: {task} model of {label!r} in {source}; `mlbatch lint`, then `mlbatch demo {name}`.
description: Predict {label} from {source}
schedule: null                 # cron ("0 3 * * *"), a preset (@daily), or null for manual runs
owner: ml-platform
tags: []
# alerts: {{slack: slack_ml_alerts}}   # an Airflow connection of your Slack webhook
defaults:
  backend: local
  resources: {{vcpu: 1, memory: 2Gi}}
  retries: 1
  timeout: 30m
steps:
  data:
    run: table.load
    params: {{{params}}}
  gbdt:
    run: train.gbdt
    needs: [data]
    shards: 5                  # one cross-validation fold per shard
  mlp:
    run: train.mlp
    needs: [data]
    shards: 5                  # the same five folds
  ensemble:
    run: ensemble.stack        # combines both models on their out-of-fold predictions
    needs: [data, gbdt, mlp]
  score:
    run: predict.batch
    needs: [ensemble, data]
'''

ID_NAME = re.compile(r"^(id|.*[_ ]id|.*[a-z]Id|.*ID)$")


def table_spec(name: str, source: str, label: str, located: str) -> str:
    """The spec text; `source` as the spec names it, `located` where this process reads it."""
    from workers.tabular.label_task import detect
    from workers.tabular.source import header, label_values, missing_source

    try:
        columns = header(located)
    except FileNotFoundError:
        raise ValueError(missing_source(located)) from None
    if label not in columns:
        hint = did_you_mean(label, columns, f"the columns of {source}")
        raise ValueError(f"--label {label!r} is not a column of {source}" + (f"; {hint}" if hint else ""))
    task = detect(label_values(located, label))
    params = [f"source: {source}", f"label: {label}", f"task: {task}"]
    id_column = obvious_id(located, columns, label)
    if id_column:
        params.append(f"id: {id_column}")
    return SPEC.format(name=name, task=task, label=label, source=source, params=", ".join(params))


def obvious_id(located: str, columns: list[str], label: str) -> str | None:
    """The first column named like an id (id, customer_id, orderId) whose values are all different."""
    from workers.tabular.source import label_values

    for column in columns:
        if column != label and ID_NAME.match(column):
            values = label_values(located, column)
            if all(values) and len(set(values)) == len(values):
                return column
    return None


def spec_source(source: str, root: Path | None) -> tuple[str, str]:
    """(the path the spec names: relative to the project root where it lies under it, the path to read)."""
    if "://" in source:
        return source, source
    path = Path(source).resolve()
    if root is not None and path.is_relative_to(root.resolve()):
        return str(path.relative_to(root.resolve())), str(path)
    return str(path), str(path)
