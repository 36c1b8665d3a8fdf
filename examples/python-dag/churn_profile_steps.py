"""The @step functions of the example Python DAG churn_profile.py.

A worker imports this module by name (`churn_profile_steps:column_profile`) and calls the function:
it is never pickled. Heavy libraries are imported inside the functions, so that parsing the DAG,
which imports this module, stays light.
"""
from mlbatch.sdk import step


@step(shards=2, resources={"memory": "1Gi", "vcpu": 1}, retries=1, timeout="10m")
def column_profile(features: str, shard=None) -> dict:
    """Mean and missing share of this shard's part of the numeric columns of a published features table."""
    import pandas as pd

    from workers import artifacts

    manifest = artifacts.read_step_manifest(features)
    table = pd.concat([artifacts.read_parquet(uri) for uri in artifacts.step_output_uris(manifest, "features")])
    columns = sorted(table.select_dtypes("number").columns)[shard.index::shard.count]
    return {column: {"mean": float(table[column].mean()), "missing": float(table[column].isna().mean())}
            for column in columns}


@step(resources={"memory": "512Mi"})
def drift_alarm(profiles: list, baseline: dict, tolerance: float = 0.2) -> dict:
    """The columns whose mean moved more than `tolerance` (relative) from the baseline."""
    merged = {column: stats for part in profiles for column, stats in part.items()}
    moved = sorted(column for column, mean in baseline.items()
                   if column in merged and abs(merged[column]["mean"] - mean) > tolerance * max(abs(mean), 1e-9))
    return {"columns": len(merged), "moved": moved}
