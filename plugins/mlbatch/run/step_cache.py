"""A step's cache key, and what went into it (kept in the step manifest, to tell why a key changed)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlbatch.backends.traits import backend_info
from mlbatch.cache import keys as cache
from mlbatch.run.paths import artifact_root, run_key

if TYPE_CHECKING:
    from mlbatch.cache.locks import LeaseLock
    from mlbatch.spec.models import ResolvedStep


def step_cache_key(step: ResolvedStep, upstream: dict[str, dict[str, Any]], shard_count: int,
                   run_id: str, log: Any = None) -> tuple[str, dict[str, Any]]:
    """`upstream` maps each needed step to its XCom summary; `log` hears a command step's image warnings."""
    inputs = {name: summary.get("key") or summary["uri"] for name, summary in upstream.items()}
    if step.run is not None:
        inputs.update(cache.external_input_keys(step.run, step.params, artifact_root()))
    if step.cache_version is not None:
        version = f"spec:{step.cache_version}"
    elif step.command is not None:
        version = _command_version(step, log)
    else:
        # a backend on this machine runs this host's workers/, whatever image the spec names
        version = cache.code_version(None if backend_info(step.backend).on_this_machine else step.image, step.run)
        version = "+".join([version, *cache.called_code_versions(step.run, step.params)])  # python.call's function
    salt = None if step.cache else run_key(run_id)  # cache: false -> never reused by another run
    worker = step.run if step.command is None else "command:" + cache.canonical_json(list(step.command))
    key = cache.step_key(worker, step.params, inputs, shard_count, version, salt=salt)
    ingredients: dict[str, Any] = {"key": key, "code_version": version, "inputs": inputs}
    if salt is not None:
        ingredients["run"] = salt
    return key, ingredients


def _command_version(step: ResolvedStep, log: Any) -> str:
    """What identifies a command step's code: its image's digest, as its backend resolves it now (a rebuilt
    image is a miss); a local command has no image, so its key is the command, params and inputs alone."""
    resolve = backend_info(step.backend).load_image_digest()
    if resolve is None:
        return "local-command"
    return resolve(step.image, (log.warning if log is not None else lambda *args: None))


def key_lock(output: str, key: str, run_id: str, log: Any) -> LeaseLock:
    """The lease on computing `output` (the step's output URI for cache key `key`), once it is ours."""
    from mlbatch.cache.locks import LeaseLock

    lock = LeaseLock(output + ".lock", run_id=run_id, log=log.warning)
    if not lock.supported:
        log.warning("no lock on this artifact store: concurrent runs may compute key %s twice", key)
    lock.acquire(on_wait=lambda lease: log.info("waiting for run %s computing key %s", lease.run_id, key))
    return lock
