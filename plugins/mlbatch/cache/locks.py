"""Lease locks beside cache keys, so that two runs needing one key compute it once.

A lock is one small JSON object, {holder, expires_at}, at {root}/{dag_id}/{step}/{key}.lock:
- acquire: create it only if absent (local: a hard link, which fails if the name exists;
  S3: a put with If-None-Match: *);
- hold: a heartbeat thread pushes expires_at forward every RENEW_S while the holder lives;
- wait: anyone else polls until the lock is gone or stale, then tries again. Stale means its
  lease expired (the holder died or lost its host), or its holder is a dead process on this
  very host, which is known at once without waiting for the lease;
- release: delete it, only if it is still ours.

The lock only saves duplicate work. Correctness never depends on it: outputs are committed
atomically under content-addressed keys, so in the worst case (a holder stalled past its
lease while another took over) two runs write the same files with the same content.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

LEASE_S = 60.0
RENEW_S = 20.0
POLL_S = 0.5


class LockLost(Exception):
    """The lock is no longer ours (someone broke it after our lease expired)."""


@dataclass(frozen=True)
class Lease:
    holder: dict[str, Any]  # run_id, host, pid, token
    expires_at: float
    version: str  # what a conditional replace or delete must match (local: token, S3: ETag)

    @property
    def run_id(self) -> str:
        return str(self.holder.get("run_id", "?"))

    def stale(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now >= self.expires_at or self._holder_dead_here()

    def _holder_dead_here(self) -> bool:
        if self.holder.get("host") != socket.gethostname():
            return False
        pid = self.holder.get("pid")
        if not isinstance(pid, int):
            return False
        import psutil

        return not psutil.pid_exists(pid)


def _encode(holder: dict[str, Any], lease_s: float) -> bytes:
    return json.dumps({"holder": holder, "expires_at": time.time() + lease_s, "lease_s": lease_s}).encode()


def _decode(data: bytes, version: str | None) -> Lease:
    try:
        body = json.loads(data)
        holder = dict(body["holder"])
        expires_at = float(body["expires_at"])
    except (ValueError, KeyError, TypeError):
        # Unreadable: no writer leaves one (every write is atomic), so it is damage. Treat as stale.
        return Lease(holder={}, expires_at=0.0, version=version or "")
    return Lease(holder=holder, expires_at=expires_at, version=version or str(holder.get("token", "")))


# --- stores: the conditional operations a lease needs, per kind of file system ------------

class _LocalStore:
    """Local files. Local file systems have no compare-and-swap, so a conditional delete renames
    the lock away first (atomic) and puts it back if what it took was not the lease it meant."""

    def __init__(self, path: str) -> None:
        self.path = path

    def create(self, data: bytes) -> str | None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        tmp = self._write_tmp(data)
        try:
            os.link(tmp, self.path)  # atomic, fails if the name exists, and the content is already complete
        except FileExistsError:
            return None
        finally:
            os.unlink(tmp)
        return _decode(data, None).version

    def read(self) -> Lease | None:
        try:
            with open(self.path, "rb") as fh:
                return _decode(fh.read(), None)
        except FileNotFoundError:
            return None

    def replace(self, data: bytes, version: str) -> str:
        current = self.read()
        if current is None or current.version != version:
            raise LockLost(self.path)
        os.replace(self._write_tmp(data), self.path)
        return _decode(data, None).version

    def delete(self, version: str) -> bool:
        taken = f"{self.path}.{uuid.uuid4().hex[:12]}.gone"
        try:
            os.rename(self.path, taken)
        except FileNotFoundError:
            return False
        try:
            with open(taken, "rb") as fh:
                if _decode(fh.read(), None).version == version:
                    return True
            try:  # not the lease we meant to remove (it changed hands just now): put it back
                os.link(taken, self.path)
            except FileExistsError:
                pass
            return False
        finally:
            os.unlink(taken)

    def _write_tmp(self, data: bytes) -> str:
        directory, name = os.path.split(self.path)
        tmp = os.path.join(directory or ".", f".{name}.{uuid.uuid4().hex[:12]}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp


class _S3Store:
    """S3 (and S3-compatible stores that honour conditional requests): If-None-Match on create,
    If-Match on the ETag for renewals and deletes, so each is a true compare-and-swap."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.path = path
        self.bucket, self.key, _ = fs.split_path(path)

    def create(self, data: bytes) -> str | None:
        try:
            response = self.fs.pipe_file(self.path, data, mode="create")
        except FileExistsError:
            return None
        except OSError as error:
            if "ConditionalRequestConflict" in str(error) or "conflict" in str(error).lower():
                return None  # a concurrent create of the same key is in flight
            raise
        return _etag(response) or self._head_etag()

    def read(self) -> Lease | None:
        from fsspec.asyn import sync

        async def get() -> tuple[bytes, str]:
            response = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self.key)
            try:
                return await response["Body"].read(), response["ETag"]
            finally:
                response["Body"].close()

        try:
            data, etag = sync(self.fs.loop, get)
        except FileNotFoundError:
            return None
        return _decode(data, etag)

    def replace(self, data: bytes, version: str) -> str:
        try:
            response = self.fs.pipe_file(self.path, data, IfMatch=version)
        except (FileNotFoundError, OSError) as error:
            raise LockLost(f"{self.path}: {error}") from None
        return _etag(response) or self._head_etag()

    def delete(self, version: str) -> bool:
        try:
            self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=version)
        except (FileNotFoundError, OSError):
            return False
        finally:
            self.fs.invalidate_cache(self.path)
        return True

    def _head_etag(self) -> str:
        self.fs.invalidate_cache(self.path)
        return self.fs.info(self.path)["ETag"]


def _etag(response: Any) -> str | None:
    return response.get("ETag") if isinstance(response, dict) else None


def _store(uri: str) -> _LocalStore | _S3Store | None:
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, path = fsspec.core.url_to_fs(uri)
    if isinstance(fs, LocalFileSystem):
        return _LocalStore(path)
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "s3" in protocols:
        return _S3Store(fs, path)
    return None


def read_lease(uri: str) -> Lease | None:
    """The lease at `uri`, if there is one (live or stale)."""
    store = _store(uri)
    return store.read() if store is not None else None


# --- the lock --------------------------------------------------------------------

class LeaseLock:
    """A lock at `uri` held by one run; `with LeaseLock(...)` waits for it."""

    def __init__(
        self,
        uri: str,
        *,
        run_id: str,
        lease_s: float = LEASE_S,
        renew_s: float = RENEW_S,
        poll_s: float = POLL_S,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.uri = uri
        self.lease_s, self.renew_s, self.poll_s = lease_s, renew_s, poll_s
        self.holder = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                       "token": uuid.uuid4().hex}
        self._log = log or (lambda message: None)
        self._store = _store(uri)
        self._version: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.lost = False
        self.blocked_by: Lease | None = None

    @property
    def supported(self) -> bool:
        """False on stores without conditional writes: there the lock is a no-op."""
        return self._store is not None

    @property
    def held(self) -> bool:
        return self._version is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; if not, `blocked_by` is the lease that holds it."""
        if self._store is None:
            self._version = ""
            return True
        for _ in range(3):  # a stale lease broken, or a lock released between our create and read
            version = self._store.create(self._body())
            if version is not None:
                self._version = version
                self.blocked_by = None
                self._start_heartbeat()
                return True
            current = self._store.read()
            if current is None:
                continue
            self.blocked_by = current
            if not current.stale():
                return False
            self._store.delete(current.version)  # conditional: only that stale lease goes
        return False

    def acquire(self, on_wait: Callable[[Lease], None] | None = None, timeout_s: float | None = None) -> None:
        """Wait for the lock; `on_wait` is called once, with the holder's lease, if we have to wait."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        told = False
        while not self.try_acquire():
            if not told and on_wait is not None and self.blocked_by is not None:
                on_wait(self.blocked_by)
                told = True
            if deadline is not None and time.monotonic() >= deadline:
                holder = self.blocked_by.run_id if self.blocked_by else "?"
                raise TimeoutError(f"lock {self.uri} still held by run {holder}")
            time.sleep(self.poll_s)

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        version, self._version = self._version, None
        if self._store is not None and version and not self.lost:
            try:
                self._store.delete(version)
            except Exception as error:  # the lease expires on its own: never fail a step for this
                self._log(f"could not release lock {self.uri}: {error}")

    def __enter__(self) -> LeaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- heartbeat ------------------------------------------------------------------

    def _body(self) -> bytes:
        return _encode(self.holder, self.lease_s)

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self.lost = False
        self._heartbeat = threading.Thread(target=self._renew_loop, name="mlbatch-lock-heartbeat", daemon=True)
        self._heartbeat.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_s):
            assert self._store is not None and self._version is not None
            try:
                self._version = self._store.replace(self._body(), self._version)
            except LockLost:
                self.lost = True
                self._log(f"lost lock {self.uri}: its lease expired and another run took it over")
                return
            except Exception as error:  # a passing store error: try again at the next beat
                self._log(f"could not renew lock {self.uri}: {error}")
