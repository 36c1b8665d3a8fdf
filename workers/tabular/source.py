"""A table source's column names, read cheaply (a CSV's first line, a Parquet file's footer), and
what to say when a source is missing. Shared by table.load and by `mlbatch lint`, which checks a
spec's label, id and columns against the file before anything runs.

Cheap to import: fsspec is imported where it is used, pyarrow only for a Parquet footer.
"""
from __future__ import annotations

import csv
import difflib
import io

PARQUET = (".parquet", ".pq")
CSV = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz", ".tsv")
HEADER_BYTES = 1 << 20  # a header line longer than this is not a header a person wrote


def is_table(source: str) -> bool:
    return source.lower().endswith(CSV + PARQUET)


def header(source: str) -> list[str]:
    """The column names of a CSV or Parquet file at any fsspec URI, without reading its rows.

    FileNotFoundError where it does not exist; other errors as the filesystem raises them."""
    import fsspec

    lower = source.lower()
    if lower.endswith(PARQUET):
        import pyarrow.parquet as pq

        with fsspec.open(source, "rb") as fh:
            return list(pq.read_schema(fh).names)
    with fsspec.open(source, "rb", compression="infer") as fh:
        first = fh.readline(HEADER_BYTES).decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(first), delimiter="\t" if lower.endswith(".tsv") else ","))
    return [name.strip() for name in rows[0]] if rows else []


def missing_source(source: str) -> str:
    """'source X does not exist', with the closest file names in its folder (or that the folder is missing)."""
    import fsspec

    message = f"source {source} does not exist"
    shown = source.rsplit("/", 1)[0] if "/" in source else "."  # the folder as the user wrote it
    try:
        fs, path = fsspec.core.url_to_fs(source)
        folder, name = path.rsplit("/", 1) if "/" in path else ("", path)
        if folder and not fs.isdir(folder):
            return f"{message}, nor does its folder {shown}"
        names = [entry.rsplit("/", 1)[-1] for entry in fs.ls(folder or ".", detail=False)]
    except Exception:  # noqa: BLE001 - the folder cannot be listed: the plain message is all there is
        return message
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        return f"{message}; did you mean {' or '.join(repr(c) for c in close)} (in {shown})?"
    tables = sorted(n for n in names if is_table(n))[:10]
    return f"{message}; tables in {shown}: {', '.join(tables) if tables else 'none'}"


LABEL_ROWS = 100_000  # label values lint reads to tell the task: enough to see every class of a table


def label_values(source: str, label: str, rows: int = LABEL_ROWS) -> list[str]:
    """The first `rows` values of column `label` (CSV: as text; Parquet: that one column read)."""
    import fsspec

    lower = source.lower()
    if lower.endswith(PARQUET):
        import pyarrow.parquet as pq

        with fsspec.open(source, "rb") as fh:
            return pq.read_table(fh, columns=[label]).column(0).to_pylist()[:rows]
    with fsspec.open(source, "rt", compression="infer", encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t" if lower.endswith(".tsv") else ",")
        return [row.get(label) for _, row in zip(range(rows), reader)]
