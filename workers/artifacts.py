"""Files on any fsspec URI: the one filesystem helper, atomic writes, reads, "latest" pointers.

Imported by the Airflow side too, so only stdlib and fsspec at module level;
pandas and joblib are imported inside the functions that need them. The layout of a
step output (shard folders, manifests, commits) belongs to workers.step_output; the
functions here that name it are shorthands for it.
"""
from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any, Iterator

from workers.errors import BadInput

if TYPE_CHECKING:
    import fsspec

MANIFEST = "manifest.json"  # the same name as workers.step_output.MANIFEST (a test holds them equal)


# --- paths -----------------------------------------------------------------

def join(base: str, *parts: str) -> str:
    """Join URI parts with '/', for local paths and remote URIs alike."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def shard_dir(output: str, shard_index: int) -> str:
    return _step(output).shard_dir(shard_index)


def shard_manifest_uri(output: str, shard_index: int) -> str:
    return _step(output).shard_manifest_uri(shard_index)


def step_manifest_uri(output: str) -> str:
    return _step(output).manifest_uri


def _step(output: str) -> Any:
    from workers.step_output import StepOutput

    return StepOutput(output)


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec file system of `uri` and the path on it: the one place that resolves a URI."""
    import fsspec  # here: a shard writing to a local path never needs it

    return fsspec.core.url_to_fs(uri)


def _plain_path(uri: str) -> str | None:
    """`uri` when it is a plain local path (no protocol, no chain), which needs no fsspec."""
    return None if "://" in uri or "::" in uri else uri


def local_path(uri: str) -> str | None:
    """The local file system path of `uri`, or None when it lives elsewhere (s3://, memory://)."""
    fs, path = filesystem(uri)
    return path if "file" in fs.protocol else None


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
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
    fs, path = (None, plain) if plain else filesystem(uri)
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
    fs, path = filesystem(uri)
    return fs.cat_file(path)


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def read_parquet(uri: str) -> Any:
    import pandas as pd

    fs, path = filesystem(uri)
    with fs.open(path, "rb") as fh:
        return pd.read_parquet(fh)


def read_joblib(uri: str) -> Any:
    import joblib

    fs, path = filesystem(uri)
    with fs.open(path, "rb") as fh:
        return joblib.load(fh)


# --- manifests ---------------------------------------------------------------

def iso_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def write_shard_manifest(output: str, *, shard_index: int, **fields: Any) -> dict[str, Any]:
    """Commit one shard (workers.step_output.StepOutput.commit_shard). Call it LAST."""
    return _step(output).commit_shard(shard_index, **fields)


def read_step_manifest(uri: str) -> dict[str, Any]:
    """The committed manifest of the step at `uri`; BadInput if it was never committed."""
    manifest = _step(uri).manifest()
    if manifest is None:
        raise BadInput(f"input step at {uri} has no committed manifest")
    return manifest


def step_output_uris(manifest: dict[str, Any], key: str) -> list[str]:
    """The URIs the shards of a committed step list under `key`, in shard order."""
    return [s["outputs"][key] for s in manifest.get("shards", []) if key in s.get("outputs", {})]


def missing_shards(output: str, shard_count: int) -> list[int]:
    """Shard indexes in [0, shard_count) without a manifest (one listing, not n lookups)."""
    return _step(output).missing(shard_count)


def commit_step(output: str, shard_count: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Commit the step at `output` from its shard manifests (workers.step_output.StepOutput.commit)."""
    return _step(output).commit(shard_count, extra)


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
