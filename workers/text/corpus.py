"""articles.corpus and history.synthetic: a realistic text corpus and reading history, offline.

The articles are the docstrings of installed Python packages (numpy, pandas, scikit-learn,
SciPy, PyTorch, PyArrow by default): real English prose about many topics, tens of thousands
of them on any machine that runs the workers, and nothing to download. Each package's .py files
are read as text and parsed with `ast` (never imported, so no side effects); the files are
visited in the order of a hash of their relative path, so every module of a package is
equally likely to come first, and the packages take turns, one article at a time. The same
installed versions and params give the same articles, ids and order, which the cache needs.

The reading history is synthetic: every user has one to three favourite topics (a topic is
a package's sub-package, e.g. `sklearn.linear_model`) and reads mostly from them.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator

from workers import artifacts
from workers.errors import BadInput
from workers.request import ShardResult, StepRequest

FIRST_DAY = date(2026, 1, 1)  # publication days are fixed dates: the corpus must not change with the clock
SKIPPED_DIRS = {"tests", "test", "testing", "_vendor", "vendored", "externals", "__pycache__"}
# where a numpydoc/Google docstring stops being prose
_SECTION = re.compile(r"\n\s*(Parameters|Returns|Yields|Raises|Examples?|See Also|Notes|Attributes|Args|"
                      r"Arguments|Keyword Arguments|References|Warnings?|Methods|Other Parameters)\s*:?\s*\n")


def articles(request: StepRequest) -> ShardResult:
    import pandas as pd

    if request.shard_count != 1:
        raise BadInput(f"articles.corpus runs as one shard, got shards={request.shard_count}")
    s = request.settings
    rows = build(s.packages, s.texts, s.min_chars, s.max_chars)
    if not rows:
        raise BadInput(f"packages {', '.join(s.packages)} hold no docstring of at least {s.min_chars} characters")
    df = pd.DataFrame(rows, columns=["title", "text", "package", "topic"])
    df.insert(0, "article_id", range(1, len(df) + 1))
    df["article_id"] = df["article_id"].astype("int64")
    days = [FIRST_DAY + timedelta(days=i * s.days // len(df)) for i in range(len(df))]
    df["published"] = pd.to_datetime(days).astype("datetime64[ms]")
    for col in ("title", "text", "package", "topic"):
        df[col] = df[col].astype("string")
    uri = artifacts.write_parquet(request.shard_path("articles.parquet"), df)
    versions = {name: _version(name) for name in s.packages}
    # where the texts come from: the package versions decide the corpus
    sources = artifacts.write_json(request.shard_path("sources.json"), {"package_versions": versions})
    print(f"articles.corpus: {len(df)} articles from {', '.join(f'{k} {v}' for k, v in versions.items())}")
    return ShardResult(
        counts={"rows": len(df), "topics": int(df["topic"].nunique())},
        metrics={"mean_chars": round(float(df["text"].str.len().mean()), 1), "last_day": str(days[-1])},
        outputs={"articles": uri, "sources": sources},
    )


def build(packages: list[str], texts: int, min_chars: int, max_chars: int) -> list[tuple[str, str, str, str]]:
    """Up to `texts` (title, text, package, topic) rows, the packages taking turns."""
    sources = [_docstrings(name, min_chars, max_chars) for name in packages]
    seen: set[str] = set()
    rows: list[tuple[str, str, str, str]] = []
    while sources and len(rows) < texts:
        for source in list(sources):
            for row in source:
                if row[1] not in seen:  # the same docstring is often inherited or copied
                    seen.add(row[1])
                    rows.append(row)
                    break
            else:
                sources.remove(source)
            if len(rows) >= texts:
                break
    return rows


def _package_dir(name: str) -> Path:
    try:
        spec = importlib.util.find_spec(name)  # finds the package without importing it
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BadInput(f"params.packages: {name!r} is not an installed package")
    return Path(next(iter(spec.submodule_search_locations)))


def _version(name: str) -> str:
    dist = {"sklearn": "scikit-learn"}.get(name, name)
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _docstrings(package: str, min_chars: int, max_chars: int) -> Iterator[tuple[str, str, str, str]]:
    root = _package_dir(package)
    files = [p for p in root.rglob("*.py") if not SKIPPED_DIRS & set(p.relative_to(root).parts[:-1])]
    files.sort(key=lambda p: hashlib.sha256(p.relative_to(root).as_posix().encode()).hexdigest())
    for path in files:
        rel = path.relative_to(root).with_suffix("").parts
        module = ".".join((package, *(rel[:-1] if rel[-1] == "__init__" else rel)))
        topic = ".".join(module.split(".")[:2])
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        for qualname, doc in _walk(tree, ""):
            text = clean(doc, max_chars)
            if len(text) >= min_chars:
                yield (f"{module}.{qualname}" if qualname else module, text, package, topic)


def _walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, str]]:
    doc = ast.get_docstring(node, clean=True) if isinstance(
        node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) else None
    if doc:
        yield prefix, doc
    for child in getattr(node, "body", []):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and not child.name.startswith("_"):
            yield from _walk(child, f"{prefix}.{child.name}" if prefix else child.name)


def clean(doc: str, max_chars: int) -> str:
    """The prose of a docstring: before its first section header, whitespace collapsed, cut on a word."""
    prose = _SECTION.split("\n" + doc, maxsplit=1)[0]
    prose = re.sub(r"\.\. \w+::.*", "", prose)  # reST directives
    text = " ".join(prose.split())
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return text


# --- reading history ---------------------------------------------------------

def history(request: StepRequest) -> ShardResult:
    import numpy as np
    import pandas as pd

    if request.shard_count != 1:
        raise BadInput(f"history.synthetic runs as one shard, got shards={request.shard_count}")
    s = request.settings
    arts = read_table(request.input_with("articles"), "articles", ["article_id", "topic", "published"])
    if arts.empty:
        raise BadInput("history.synthetic: the articles table is empty")
    rng = np.random.default_rng(s.seed)
    topics = arts["topic"].astype(str).to_numpy()
    names, sizes = np.unique(topics, return_counts=True)
    by_topic = {name: np.flatnonzero(topics == name) for name in names}
    ids = arts["article_id"].to_numpy()
    published = arts["published"].to_numpy().astype("datetime64[ms]")

    frames = []
    for user in range(1, s.users + 1):
        favourites = rng.choice(names, size=min(len(names), rng.integers(1, 4)), replace=False,
                                p=sizes / sizes.sum())
        n = max(1, int(rng.poisson(s.reads)))
        pool = np.concatenate([by_topic[t] for t in favourites])
        from_favourites = rng.random(n) < 0.85  # mostly what they like, sometimes anything
        picks = np.where(from_favourites, rng.choice(pool, size=n), rng.integers(0, len(ids), size=n))
        picks = np.unique(picks)
        # read some hours after publication
        read_at = published[picks] + (rng.uniform(1, 23, size=len(picks)) * 3_600_000).astype("timedelta64[ms]")
        frames.append(pd.DataFrame({"user_id": np.int64(user), "article_id": ids[picks], "read_at": read_at}))
    reads = pd.concat(frames, ignore_index=True).sort_values(["user_id", "read_at"], kind="stable",
                                                             ignore_index=True)
    uri = artifacts.write_parquet(request.shard_path("reads.parquet"), reads)
    return ShardResult(counts={"users": s.users, "rows": len(reads)},
                       metrics={"mean_reads": len(reads) / s.users}, outputs={"reads": uri})


def read_table(manifest: dict, key: str, columns: list[str] | None = None):
    """Every shard file of a committed step's output `key`, concatenated; BadInput names missing columns."""
    import pandas as pd

    frames = [artifacts.read_parquet(uri) for uri in artifacts.step_output_uris(manifest, key)]
    if not frames:
        raise BadInput(f"input step at {manifest.get('step_uri')} has no '{key}' output")
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    missing = [c for c in columns or [] if c not in df.columns]
    if missing:
        raise BadInput(f"'{key}' table at {manifest.get('step_uri')} has no column(s) "
                       f"{', '.join(repr(c) for c in missing)}; it has: {', '.join(map(str, df.columns))}")
    return df
