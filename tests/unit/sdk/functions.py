"""@step functions of the sdk's unit tests (an importable module, as a worker needs)."""
from mlbatch.sdk import step


@step(resources={"memory": "1Gi", "vcpu": 2}, shards=3, retries=1, timeout="10m")
def train(table: dict, lr: float = 0.1, shard=None) -> dict:
    return {"rows": len(table.get("rows", [])), "lr": lr, "shard": [shard.index, shard.count] if shard else None}


@step
def make_table(rows: int) -> dict:
    return {"rows": list(range(rows))}


@step(resources={"memory": "1Gx"})
def badly_sized() -> None:
    return None


@step(retires=3)
def misspelt() -> None:
    return None


def not_json() -> set:
    return {1, 2}


@step(shards=2, gate={"metric": "auc", "min": 0.5})
def scored(base: float, shard=None) -> int:
    shard.metric("auc", base + shard.index / 10)
    shard.metric(f"only_shard_{shard.index}", 1)  # not reported by every shard: no step metric
    return shard.index


@step(gate={"metric": "auc"})
def gate_without_threshold(shard=None) -> None:
    return None


def bad_metric(shard=None) -> None:
    shard.metric("auc", float("nan"))
