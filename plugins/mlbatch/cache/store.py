"""The cache as a store: list the committed keys and clean out old ones (`mlbatch cache`).

Layout under the artifact root (see mlbatch.cache.keys and workers.artifacts):
    {dag_id}/{step}/{key}/...          one key: shard folders, then manifest.json (its commit)
    {dag_id}/{step}/{key}.lock         the lease of a run computing that key
    {dag_id}/{step}/latest.json        the key the newest run of the step used
Anything else under a step (names starting with '_' or '.') is not a key and is left alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from workers.artifacts import filesystem
from workers.step_output import MANIFEST, StepOutput

from mlbatch.cache.locks import Lease, LeaseLock, read_lease

LOCK_SUFFIX = ".lock"
LATEST = "latest.json"
GC_HOLDER = "mlbatch-cache-gc"


@dataclass
class Entry:
    dag_id: str
    step: str
    key: str
    uri: str
    size: int = 0
    modified: datetime | None = None  # newest file under the key
    committed_at: datetime | None = None  # None: never committed (a try that died, or one in flight)
    run_id: str | None = None  # the run that computed it
    latest: bool = False  # the step's latest.json points here
    lock: Lease | None = None

    @property
    def name(self) -> str:
        return f"{self.dag_id}/{self.step}/{self.key}"

    @property
    def locked(self) -> bool:
        return self.lock is not None and not self.lock.stale()

    @property
    def age_from(self) -> datetime | None:
        return self.committed_at or self.modified


@dataclass
class GcResult:
    deleted: list[Entry]
    kept: list[tuple[Entry, str]]  # old enough, but kept: (entry, why)
    freed: int


def _mtime(info: dict[str, Any]) -> datetime | None:
    value = info.get("mtime", info.get("LastModified"))
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


def _parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def entries(root: str, dag_id: str | None = None) -> list[Entry]:
    """Every key under `root` (or under one DAG), from one recursive listing plus the manifests."""
    fs, base = filesystem(root)
    base = base.rstrip("/")
    start = f"{base}/{dag_id}" if dag_id else base
    fs.invalidate_cache(start)
    if not fs.exists(start):
        return []
    found: dict[tuple[str, str, str], Entry] = {}
    manifests: dict[str, tuple[str, str, str]] = {}
    pointers: dict[str, tuple[str, str]] = {}
    locks: dict[tuple[str, str, str], str] = {}
    for path, info in fs.find(start, detail=True).items():
        parts = path[len(base) + 1:].split("/")
        if len(parts) < 3 or any(p.startswith((".", "_")) for p in parts[:3]):
            continue
        dag, step, name = parts[:3]
        if len(parts) == 3:
            if name == LATEST:
                pointers[path] = (dag, step)
            elif name.endswith(LOCK_SUFFIX):
                locks[(dag, step, name[: -len(LOCK_SUFFIX)])] = _with_protocol(fs, path)
            continue
        entry = found.setdefault((dag, step, name), Entry(dag, step, name, _with_protocol(fs, f"{base}/{dag}/{step}/{name}")))
        entry.size += int(info.get("size") or 0)
        moment = _mtime(info)
        if moment and (entry.modified is None or moment > entry.modified):
            entry.modified = moment
        if parts[3:] == [MANIFEST]:
            manifests[path] = (dag, step, name)

    for path, blob in _cat(fs, list(manifests)).items():
        try:
            manifest = json.loads(blob)
        except ValueError:
            continue  # unreadable: treated as never committed
        entry = found[manifests[path]]
        entry.committed_at = _parse_time(manifest.get("committed_at"))
        entry.run_id = (manifest.get("run") or {}).get("run_id")
    for path, blob in _cat(fs, list(pointers)).items():
        try:
            target = str(json.loads(blob).get("uri", "")).rstrip("/").rsplit("/", 1)[-1]
        except ValueError:
            continue
        dag, step = pointers[path]
        if (dag, step, target) in found:
            found[(dag, step, target)].latest = True
    for triple, lock_uri in locks.items():
        lease = read_lease(lock_uri)
        entry = found.get(triple)
        if entry is None:  # a run that holds the lock and has written nothing yet
            entry = found[triple] = Entry(*triple, uri=lock_uri[: -len(LOCK_SUFFIX)])
        entry.lock = lease
    return sorted(found.values(), key=lambda e: (e.dag_id, e.step, e.age_from or datetime.min.replace(tzinfo=timezone.utc)))


def _cat(fs: Any, paths: list[str]) -> dict[str, bytes]:
    if not paths:
        return {}
    blobs = fs.cat(paths, on_error="return")  # one batched read: concurrent on object stores
    if len(paths) == 1 and not isinstance(blobs, dict):
        blobs = {paths[0]: blobs}
    return {p: b for p, b in blobs.items() if isinstance(b, bytes)}


def _with_protocol(fs: Any, path: str) -> str:
    return fs.unstrip_protocol(path) if not _is_local(fs) else path


def _is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


# --- ls ----------------------------------------------------------------------------

def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_entries(items: list[Entry]) -> str:
    rows = [("KEY", "COMMITTED", "RUN", "SIZE", "")]
    for e in items:
        committed = e.committed_at.isoformat(timespec="seconds") if e.committed_at else "uncommitted"
        notes = [n for n, on in (("latest", e.latest), (f"locked by {e.lock.run_id}" if e.lock else "", e.locked)) if on]
        rows.append((e.name, committed, e.run_id or "-", format_size(e.size), ", ".join(notes)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + ("  " + row[4] if row[4] else "")
             for row in rows]
    total = sum(e.size for e in items)
    lines.append(f"{len(items)} key(s), {format_size(total)}")
    return "\n".join(line.rstrip() for line in lines)


# --- gc ----------------------------------------------------------------------------

def gc(
    root: str,
    older_than: timedelta,
    *,
    dag_id: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    log: Callable[[str], None] = print,
) -> GcResult:
    """Delete keys committed (or, never committed, last written) before now - older_than.

    Never deletes the key a step's latest.json points at, nor one whose lock is live. Each
    deletion holds the key's lock, so no run starts computing the key while it goes, and
    removes the manifest first, so no run takes a half-deleted key for a cache hit.
    """
    cutoff = (now or datetime.now(timezone.utc)) - older_than
    result = GcResult(deleted=[], kept=[], freed=0)
    for entry in entries(root, dag_id):
        if entry.age_from is None or entry.age_from >= cutoff:
            continue
        if entry.latest:
            result.kept.append((entry, "latest"))
            continue
        if entry.locked:
            result.kept.append((entry, f"locked by run {entry.lock.run_id if entry.lock else '?'}"))
            continue
        if dry_run:
            log(f"would delete {entry.name} ({format_size(entry.size)})")
            result.deleted.append(entry)
            result.freed += entry.size
            continue
        lock = LeaseLock(entry.uri + LOCK_SUFFIX, run_id=GC_HOLDER)
        if not lock.try_acquire():
            result.kept.append((entry, f"locked by run {lock.blocked_by.run_id if lock.blocked_by else '?'}"))
            continue
        try:
            _delete_key(entry.uri)
        finally:
            lock.release()
        log(f"deleted {entry.name} ({format_size(entry.size)})")
        result.deleted.append(entry)
        result.freed += entry.size
    for entry, why in result.kept:
        log(f"kept {entry.name}: {why}")
    verb = "would free" if dry_run else "freed"
    log(f"{len(result.deleted)} key(s) {'to delete' if dry_run else 'deleted'}, {verb} {format_size(result.freed)}")
    return result


def _delete_key(uri: str) -> None:
    StepOutput(uri).uncommit()  # no reader may see a committed step whose files are going
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)
