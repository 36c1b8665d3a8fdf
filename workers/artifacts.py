"""Step outputs on any fsspec URI: atomic writes, shard manifests, step commits.

Imported by the Airflow side too, so only stdlib and fsspec at module level;
pandas and joblib are imported inside the functions that need them.

Layout of a step output URI (a directory):
    {output}/shard-00000/<data files>     written first
    {output}/shard-00000/manifest.json    written last: the shard's commit
    {output}/manifest.json                the step's commit, written by commit_step
"""
from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any, Iterator

from workers.errors import BadInput, MissingShards

if TYPE_CHECKING:
    import fsspec

MANIFEST = "manifest.json"


# --- paths -----------------------------------------------------------------

def join(base: str, *parts: str) -> str:
    """Join URI parts with '/', for local paths and remote URIs alike."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def shard_dir(output: str, shard_index: int) -> str:
    return join(output, f"shard-{shard_index:05d}")


def shard_manifest_uri(output: str, shard_index: int) -> str:
    return join(shard_dir(output, shard_index), MANIFEST)


def step_manifest_uri(output: str) -> str:
    return join(output, MANIFEST)


def _fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    import fsspec  # here: a shard writing to a local path never needs it

    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def _plain_path(uri: str) -> str | None:
    """`uri` when it is a plain local path (no protocol, no chain), which needs no fsspec."""
    return None if "://" in uri or "::" in uri else uri


def local_path(uri: str) -> str | None:
    """The local file system path of `uri`, or None when it lives elsewhere (s3://, memory://)."""
    fs, path = _fs(uri)
    return path if "file" in fs.protocol else None


def exists(uri: str) -> bool:
    fs, path = _fs(uri)
    return fs.exists(path)


# --- atomic writes -----------------------------------------------------------

@contextlib.contextmanager
def open_atomic(uri: str) -> Iterator[IO[bytes]]:
    """A binary file handle whose content appears at `uri` only if the block succeeds.

    Local: write a temp file in the same directory, fsync, os.replace (atomic
    on POSIX). Remote: buffer in memory and upload with one put, because an
    object store shows an object only once a put completes, while a streaming
    handle would publish a partial object when closed after an error.
    """
    plain = _plain_path(uri)
    fs, path = (None, plain) if plain else _fs(uri)
    if fs is None or "file" in fs.protocol:
        directory, name = os.path.split(path)
        os.makedirs(directory or ".", exist_ok=True)
        tmp = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp")  # not uuid: it imports platform
        try:
            with open(tmp, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
    else:
        import io

        buf = io.BytesIO()
        yield buf
        fs.pipe_file(path, buf.getvalue())


def write_bytes(uri: str, data: bytes) -> str:
    with open_atomic(uri) as fh:
        fh.write(data)
    return uri


def _json_default(obj: Any) -> Any:
    # numpy scalars (np.int64, np.float32) without importing numpy here
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n").encode()


def write_json(uri: str, obj: Any) -> str:
    return write_bytes(uri, to_json_bytes(obj))


def write_parquet(uri: str, df: Any) -> str:
    with open_atomic(uri) as fh:
        df.to_parquet(fh, index=False)
    return uri


def write_joblib(uri: str, obj: Any) -> str:
    import joblib

    with open_atomic(uri) as fh:
        joblib.dump(obj, fh)
    return uri


# --- reads -------------------------------------------------------------------

def read_bytes(uri: str) -> bytes:
    fs, path = _fs(uri)
    return fs.cat_file(path)


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def read_parquet(uri: str) -> Any:
    import pandas as pd

    fs, path = _fs(uri)
    with fs.open(path, "rb") as fh:
        return pd.read_parquet(fh)


def read_joblib(uri: str) -> Any:
    import joblib

    fs, path = _fs(uri)
    with fs.open(path, "rb") as fh:
        return joblib.load(fh)


# --- manifests ---------------------------------------------------------------

def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def write_shard_manifest(
    output: str,
    *,
    worker: str,
    shard_index: int,
    shard_count: int,
    try_number: int,
    params: dict[str, Any],
    counts: dict[str, Any],
    metrics: dict[str, Any],
    outputs: dict[str, str],
    started_at: datetime,
    finished_at: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Commit one shard. Call it LAST, after every data file of the shard is written."""
    finished_at = finished_at or datetime.now(timezone.utc)
    manifest = {
        "worker": worker,
        "shard_index": shard_index,
        "shard_count": shard_count,
        "try_number": try_number,
        "params": params,
        "counts": counts,
        "metrics": metrics,
        "outputs": outputs,
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        **(extra or {}),
    }
    write_json(shard_manifest_uri(output, shard_index), manifest)
    return manifest


def read_step_manifest(uri: str) -> dict[str, Any]:
    """The committed manifest of the step at `uri`; BadInput if it was never committed."""
    try:
        return read_json(step_manifest_uri(uri))
    except FileNotFoundError:
        raise BadInput(f"input step at {uri} has no committed manifest") from None


def step_output_uris(manifest: dict[str, Any], key: str) -> list[str]:
    """The URIs the shards of a committed step list under `key`, in shard order."""
    return [s["outputs"][key] for s in manifest.get("shards", []) if key in s.get("outputs", {})]


def missing_shards(output: str, shard_count: int) -> list[int]:
    """Shard indexes in [0, shard_count) without a manifest (one listing, not n lookups)."""
    fs, path = _fs(output)
    fs.invalidate_cache(path)  # s3fs caches listings; a stale one would hide new shards
    found = {p.rstrip("/") for p in fs.glob(join(path, "shard-*", MANIFEST))}
    expected = {i: _fs(shard_manifest_uri(output, i))[1] for i in range(shard_count)}
    return [i for i, p in expected.items() if p.rstrip("/") not in found]


def _read_shard_manifests(output: str, shard_count: int) -> list[dict[str, Any]]:
    fs, _ = _fs(output)
    paths = [_fs(shard_manifest_uri(output, i))[1] for i in range(shard_count)]
    # one batched cat: concurrent on object stores, where 10,000 serial GETs would crawl
    blobs = fs.cat(paths, on_error="return") if paths else {}
    missing = [i for i, p in enumerate(paths) if isinstance(blobs.get(p), Exception) or p not in blobs]
    if missing:
        raise MissingShards(output, missing)
    manifests = [json.loads(blobs[p]) for p in paths]
    for i, m in enumerate(manifests):
        if m.get("shard_index") != i or m.get("shard_count") != shard_count:
            raise ValueError(
                f"shard manifest {shard_manifest_uri(output, i)} says shard "
                f"{m.get('shard_index')}/{m.get('shard_count')}, expected {i}/{shard_count}"
            )
    return manifests


def _sum_counts(manifests: list[dict[str, Any]]) -> dict[str, int | float]:
    totals: dict[str, int | float] = {}
    for m in manifests:
        for key, value in m.get("counts", {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    return totals


def _combined_metrics(shards: list[dict[str, Any]]) -> dict[str, Any]:
    from workers.registry import WORKERS

    worker = WORKERS.get(shards[0].get("worker", "")) if shards else None
    return worker.combined_metrics(shards) if worker is not None else {}


def commit_step(output: str, shard_count: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Aggregate every shard manifest into {output}/manifest.json (the step's commit).

    Raises MissingShards if any shard has not committed. `extra` is merged in at
    the top level; its "metrics" entry is merged into the step's metrics. A step of several
    shards gets the metrics its worker combines from them (e.g. out-of-fold over every fold),
    and the task (binary or regression) every shard names.
    """
    shards = _read_shard_manifests(output, shard_count)
    extra = dict(extra or {})
    metrics = dict(shards[0].get("metrics", {})) if shard_count == 1 else _combined_metrics(shards)
    metrics.update(extra.pop("metrics", {}) or {})
    tasks = {shard.get("task") for shard in shards}
    manifest = {
        "step_uri": output,
        "shard_count": shard_count,
        "counts": _sum_counts(shards),
        "metrics": metrics,
        "committed_at": _iso(datetime.now(timezone.utc)),
        **({"task": tasks.pop()} if len(tasks) == 1 and None not in tasks else {}),
        **extra,
        "shards": shards,
    }
    write_json(step_manifest_uri(output), manifest)
    return manifest


# -- "latest" pointers: how one batch reads another batch's newest committed step ----------
def latest_pointer_uri(root: str, dag_id: str, step: str) -> str:
    return join(root, dag_id, step, "latest.json")


def publish_latest(root: str, dag_id: str, step: str, output: str, run_id: str) -> None:
    """Point {root}/{dag_id}/{step}/latest.json at a committed step output (one atomic write)."""
    write_json(latest_pointer_uri(root, dag_id, step), {"uri": output, "run_id": run_id})


def read_latest(root: str, ref: str) -> dict[str, Any]:
    """The step manifest behind a 'BATCH.STEP' reference; BadInput if there is none yet."""
    from workers.errors import BadInput

    dag_id, _, step = ref.rpartition(".")
    if not dag_id or not step:
        raise BadInput(f"model reference {ref!r}: expected 'BATCH.STEP', e.g. 'churn_training.ensemble'")
    pointer = latest_pointer_uri(root, dag_id, step)
    if not exists(pointer):
        raise BadInput(f"no committed output of {ref} under {root} yet: run the {dag_id} batch first")
    return read_step_manifest(read_json(pointer)["uri"])
