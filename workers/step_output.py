"""StepOutput: the one owner of a step output's layout on the store, and of its commit.

    {output}/shard-00000/<data files>     written first, by the shard's worker
    {output}/shard-00000/manifest.json    written last: the shard's commit (`write_shard`)
    {output}/manifest.json                the step's commit (`commit`), by the orchestrator

The workers' runner commits shards, the step operator finds the missing ones and commits the
step, a cache refresh un-commits, tracking names the shard folders: all through this class, so
no other module spells the layout. Imports only the stdlib and workers.artifacts (fsspec).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from workers.artifacts import filesystem, iso_time, join, read_json, write_json
from workers.errors import MissingShards

MANIFEST = "manifest.json"
SHARD_GLOB = "shard-*"


def shard_folder(shard_index: int) -> str:
    """The folder of one shard under its step output: shard-00000."""
    return f"shard-{shard_index:05d}"


@dataclass(frozen=True)
class StepOutput:
    uri: str

    @property
    def manifest_uri(self) -> str:
        return join(self.uri, MANIFEST)

    def shard_dir(self, shard_index: int) -> str:
        return join(self.uri, shard_folder(shard_index))

    def shard_manifest_uri(self, shard_index: int) -> str:
        return join(self.shard_dir(shard_index), MANIFEST)

    def manifest(self) -> dict[str, Any] | None:
        """The step's committed manifest; None while the step is not committed."""
        try:
            return read_json(self.manifest_uri)
        except FileNotFoundError:
            return None

    def missing(self, shard_count: int) -> list[int]:
        """Shard indexes in [0, shard_count) without a shard manifest (one listing, not n lookups)."""
        fs, path = filesystem(self.uri)
        fs.invalidate_cache(path)  # s3fs caches listings; a stale one would hide new shards
        found = {p.rstrip("/") for p in fs.glob(join(path, SHARD_GLOB, MANIFEST))}
        expected = {i: filesystem(self.shard_manifest_uri(i))[1] for i in range(shard_count)}
        return [i for i, p in expected.items() if p.rstrip("/") not in found]

    def commit_shard(self, shard_index: int, *, worker: str, shard_count: int, try_number: int,
                     params: dict[str, Any], counts: dict[str, Any], metrics: dict[str, Any],
                     outputs: dict[str, str], started_at: datetime, finished_at: datetime | None = None,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Commit one shard. Call it LAST, after every data file of the shard is written."""
        finished_at = finished_at or datetime.now(timezone.utc)
        manifest = {
            "worker": worker, "shard_index": shard_index, "shard_count": shard_count, "try_number": try_number,
            "params": params, "counts": counts, "metrics": metrics, "outputs": outputs,
            "started_at": iso_time(started_at), "finished_at": iso_time(finished_at),
            "duration_s": round((finished_at - started_at).total_seconds(), 3),
            **(extra or {}),
        }
        write_json(self.shard_manifest_uri(shard_index), manifest)
        return manifest

    def shard_manifests(self, shard_count: int) -> list[dict[str, Any]]:
        """Every shard's manifest, in order; MissingShards if one has not committed."""
        fs, _ = filesystem(self.uri)
        paths = [filesystem(self.shard_manifest_uri(i))[1] for i in range(shard_count)]
        # one batched cat: concurrent on object stores, where 10,000 serial GETs would crawl
        blobs = fs.cat(paths, on_error="return") if paths else {}
        missing = [i for i, p in enumerate(paths) if isinstance(blobs.get(p), Exception) or p not in blobs]
        if missing:
            raise MissingShards(self.uri, missing)
        manifests = [json.loads(blobs[p]) for p in paths]
        for i, m in enumerate(manifests):
            if m.get("shard_index") != i or m.get("shard_count") != shard_count:
                raise ValueError(
                    f"shard manifest {self.shard_manifest_uri(i)} says shard "
                    f"{m.get('shard_index')}/{m.get('shard_count')}, expected {i}/{shard_count}"
                )
        return manifests

    def commit(self, shard_count: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Aggregate every shard manifest into {output}/manifest.json (the step's commit).

        Raises MissingShards if any shard has not committed. `extra` is merged in at the top
        level; its "metrics" entry is merged into the step's metrics. A step of several shards
        gets the metrics its worker combines from them (e.g. out-of-fold over every fold), and
        the task (binary or regression) every shard names.
        """
        shards = self.shard_manifests(shard_count)
        extra = dict(extra or {})
        metrics = dict(shards[0].get("metrics", {})) if shard_count == 1 else _combined_metrics(shards)
        metrics.update(extra.pop("metrics", {}) or {})
        tasks = {shard.get("task") for shard in shards}
        manifest = {
            "step_uri": self.uri,
            "shard_count": shard_count,
            "counts": _sum_counts(shards),
            "metrics": metrics,
            "committed_at": iso_time(datetime.now(timezone.utc)),
            **({"task": tasks.pop()} if len(tasks) == 1 and None not in tasks else {}),
            **extra,
            "shards": shards,
        }
        write_json(self.manifest_uri, manifest)
        return manifest

    def uncommit(self) -> None:
        """Withdraw the step's commit, then every shard's, so that each shard is computed again.

        The step manifest goes first: no reader may see a committed step with shards missing.
        Data files stay until the workers replace them (each file atomically).
        """
        fs, path = filesystem(self.uri)
        step_manifest = filesystem(self.manifest_uri)[1]
        if fs.exists(step_manifest):
            fs.rm_file(step_manifest)
        fs.invalidate_cache(path)
        shard_manifests = fs.glob(join(path, SHARD_GLOB, MANIFEST))
        if shard_manifests:
            fs.rm(shard_manifests)


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
