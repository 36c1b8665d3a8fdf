"""Small tables that are not the churn data: strings, ints, bools and gaps, with a learnable label."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def loans(rows: int = 600, seed: int = 3) -> pd.DataFrame:
    """A loan table: `target` (0/1) follows the features, so any model beats chance."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows).round(1)
    grade = rng.choice(["A", "B", "C", "D"], rows)
    branch = rng.integers(1, 5, rows)  # a code: 4 distinct ints -> categorical
    age = rng.integers(18, 80, rows)  # many distinct ints -> numeric
    owner = rng.random(rows) < 0.4
    logit = -0.05 * (income - 50) + np.select([grade == "A", grade == "D"], [-1.5, 1.5], 0) + 0.8 * (branch == 2)
    target = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    df = pd.DataFrame({"loan": [f"L{i:05d}" for i in range(rows)], "income": income, "grade": grade,
                       "branch": branch, "age": age, "owner": owner, "target": target})
    df.loc[rng.random(rows) < 0.1, "income"] = np.nan  # gaps in a numeric ...
    df.loc[rng.random(rows) < 0.05, "grade"] = None  # ... and in a categorical
    return df


def write_csv(tmp: Path, df: pd.DataFrame, name: str = "loans.csv") -> str:
    path = tmp / name
    df.to_csv(path, index=False)
    return str(path)
