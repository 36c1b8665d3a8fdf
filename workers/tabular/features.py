"""features.synthetic: churn-like customer features, generated or read from a file (the demo's data).

Its schema is fixed, not inferred: `region` is categorical, the other features numeric.
Any other table: table.load.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workers.errors import BadInput
from workers.request import ShardResult, StepRequest
from workers.tabular.schema import TableSchema
from workers.tabular.table import read_source as read_table_file, write_table

ID = "customer_id"
LABEL = "churned"
NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "contract", "support_calls",
           "late_payments", "num_products", "has_autopay", "age"]
REGIONS = ["north", "south", "east", "west"]
FEATURES = NUMERIC + ["region"]
SCHEMA = TableSchema(task="binary", label=LABEL, id=ID, numeric=NUMERIC, categorical={"region": REGIONS})


def synthetic(request: StepRequest) -> ShardResult:
    if request.shard_count != 1:
        raise BadInput(f"features.synthetic runs as one shard, got shards={request.shard_count}")
    settings = request.settings
    if settings.source:
        df = read_source(settings.source)
    else:
        df = generate(settings.rows, settings.seed)
    return write_table(request, df, SCHEMA)


def generate(rows: int, seed: int) -> pd.DataFrame:
    """Deterministic churn data: the label follows a noisy logistic model of the features,
    so a good model reaches an AUC around 0.85, not a perfect 1.0."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(3, size=rows, p=[0.5, 0.3, 0.2])  # month-to-month, 1 year, 2 years
    tenure = rng.integers(1, 73, size=rows)
    monthly = np.clip(rng.normal(70, 25, size=rows), 18, 150).round(2)
    total = (tenure * monthly * rng.uniform(0.9, 1.1, size=rows)).round(2)
    support_calls = rng.poisson(1.5, size=rows)
    late_payments = rng.poisson(0.4 + 0.4 * (contract == 0), size=rows)
    num_products = np.minimum(1 + rng.poisson(1.0, size=rows), 6)
    has_autopay = rng.binomial(1, 0.55, size=rows)
    age = rng.integers(18, 81, size=rows)
    region = rng.choice(REGIONS, size=rows)

    logit = (
        -0.9
        - 0.05 * tenure
        + 0.025 * (monthly - 70)
        + 1.3 * (contract == 0) - 1.0 * (contract == 2)
        + 0.5 * support_calls
        + 0.6 * late_payments
        - 0.35 * (num_products - 2)
        - 0.7 * has_autopay
        + 0.02 * np.abs(age - 45)            # a non-linear effect trees can find
        + 0.4 * (region == "south")
        + rng.normal(0, 0.6, size=rows)       # what no model can explain
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))

    return pd.DataFrame({
        ID: np.arange(1, rows + 1, dtype=np.int64),
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "contract": contract,
        "support_calls": support_calls,
        "late_payments": late_payments,
        "num_products": num_products,
        "has_autopay": has_autopay,
        "age": age,
        "region": pd.Series(region, dtype=object).astype("string"),
        LABEL: churned.astype(np.int64),
    })


def read_source(source: str) -> pd.DataFrame:
    """Read a CSV or Parquet file and check it has every feature column."""
    df = read_table_file(source)
    missing = [c for c in FEATURES if c not in df.columns]
    if missing:
        raise BadInput(f"source {source} is missing required column(s): {', '.join(missing)}")
    for col in NUMERIC:
        converted = pd.to_numeric(df[col], errors="coerce")
        if converted.isna().sum() > df[col].isna().sum():
            raise BadInput(f"source {source}: column '{col}' has non-numeric values")
        df[col] = converted
    if LABEL in df.columns and not df[LABEL].dropna().isin([0, 1]).all():
        raise BadInput(f"source {source}: label column '{LABEL}' must hold only 0 and 1")
    if ID not in df.columns:
        df.insert(0, ID, np.arange(1, len(df) + 1, dtype=np.int64))
    df["region"] = df["region"].astype("string")
    keep = [ID, *FEATURES] + ([LABEL] if LABEL in df.columns else [])
    return df[keep]

