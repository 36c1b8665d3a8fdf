"""Cache keys (stability, canonical params, what invalidates them), cache modes, refresh and locks."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlbatch.cache import keys as cache
from mlbatch.cache.locks import LeaseLock, read_lease
from workers import artifacts

DIGEST = "sha256:" + "ab" * 32


def key(**overrides):
    args = {
        "worker": "train.gbdt",
        "params": {"max_iter": 150, "learning_rate": 0.1, "seed": 7},
        "input_keys": {"features": "0123456789abcdef0123"},
        "shard_count": 5,
        "code_version": "workers:abc",
    }
    args.update(overrides)
    return cache.step_key(**args)


# --- keys -------------------------------------------------------------------------

def test_same_inputs_give_the_same_key():
    assert key() == key()
    assert len(key()) == cache.KEY_LENGTH
    assert all(c in "0123456789abcdef" for c in key())


def test_param_order_and_number_format_do_not_change_the_key():
    reordered = {"seed": 7, "learning_rate": 0.1, "max_iter": 150}
    assert key(params=reordered) == key()
    assert key(params={"max_iter": 150.0, "learning_rate": 0.1, "seed": 7}) == key()
    assert key(params={"max_iter": 150, "learning_rate": 1e-1, "seed": 7}) == key()
    nested_a = {"grid": {"b": [1.0, 2], "a": (3,)}}
    nested_b = {"grid": {"a": [3], "b": [1, 2.0]}}
    assert key(params=nested_a) == key(params=nested_b)


@pytest.mark.parametrize("change", [
    {"params": {"max_iter": 151, "learning_rate": 0.1, "seed": 7}},
    {"params": {"max_iter": 150, "learning_rate": 0.1000001, "seed": 7}},
    {"params": {"max_iter": 150, "learning_rate": 0.1, "seed": 7, "max_depth": 3}},
    {"params": {"max_iter": 150, "learning_rate": 0.1, "seed": True}},  # True is not 1 in a spec
    {"input_keys": {"features": "0123456789abcdef0124"}},
    {"input_keys": {"features": "0123456789abcdef0123", "extra": "x"}},
    {"input_keys": {"other_name": "0123456789abcdef0123"}},
    {"code_version": "workers:abd"},
    {"code_version": "image:" + DIGEST},
    {"shard_count": 4},
    {"worker": "train.other"},
    {"salt": "run-manual__2026"},
])
def test_any_change_in_what_a_step_computes_from_gives_a_new_key(change):
    assert key(**change) != key()


def test_canonical_json_is_sorted_and_compact():
    assert cache.canonical_json({"b": 2.0, "a": {"d": 1, "c": -0.0}}) == '{"a":{"c":0,"d":1},"b":2}'
    with pytest.raises(ValueError):
        cache.canonical_json({"x": math.nan})
    with pytest.raises(TypeError):
        cache.canonical_json({"x": object()})


# --- code version -------------------------------------------------------------------

def test_code_version_is_the_image_digest_when_pinned_by_one():
    assert cache.code_version(f"registry.example/mlbatch-worker@{DIGEST}") == f"image:{DIGEST}"
    assert cache.code_version(f"mlbatch-worker:gpu@{DIGEST}") == f"image:{DIGEST}"


def test_code_version_is_the_workers_source_otherwise():
    version = cache.code_version("mlbatch-worker:cpu")
    assert version.startswith("workers:")
    assert version == cache.code_version(None)


def test_source_digest_changes_with_any_python_file_of_the_tree(tmp_path):
    def digest_of(tree: dict[str, str]) -> str:
        root = tmp_path / f"tree{len(list(tmp_path.iterdir()))}"
        for name, text in tree.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        return cache.source_digest(str(root))

    base = {"a.py": "x = 1\n", "sub/b.py": "y = 2\n"}
    assert digest_of(base) == digest_of(dict(reversed(list(base.items()))))
    assert digest_of({**base, "sub/b.py": "y = 3\n"}) != digest_of(base)
    assert digest_of({"a.py": "x = 1\n", "sub/c.py": "y = 2\n"}) != digest_of(base)  # a rename counts
    assert digest_of({**base, "notes.txt": "not code"}) == digest_of(base)


# --- data read through params ----------------------------------------------------------

def test_a_replaced_source_file_changes_its_fingerprint(tmp_path):
    source = tmp_path / "customers.csv"
    source.write_text("a,b\n1,2\n")
    first = cache.external_input_keys("features.synthetic", {"source": str(source), "rows": 5}, str(tmp_path))
    os.utime(source, (1, 1))
    source.write_text("a,b\n1,3\n")
    second = cache.external_input_keys("features.synthetic", {"source": str(source), "rows": 5}, str(tmp_path))
    assert set(first) == {"params.source"}
    assert first != second
    assert cache.external_input_keys("features.synthetic", {"rows": 5}, str(tmp_path)) == {}


def test_a_newer_model_of_another_batch_changes_the_fingerprint(tmp_path):
    root = str(tmp_path)
    params = {"model": "churn_training.ensemble", "threshold": 0.5}
    assert cache.external_input_keys("predict.batch", params, root) == {"params.model": "latest:none"}
    artifacts.publish_latest(root, "churn_training", "ensemble", f"{root}/churn_training/ensemble/k1", "r1")
    first = cache.external_input_keys("predict.batch", params, root)
    artifacts.publish_latest(root, "churn_training", "ensemble", f"{root}/churn_training/ensemble/k2", "r2")
    second = cache.external_input_keys("predict.batch", params, root)
    assert first == {"params.model": f"latest:{root}/churn_training/ensemble/k1"}
    assert second == {"params.model": f"latest:{root}/churn_training/ensemble/k2"}


# --- mode -----------------------------------------------------------------------------

def test_cache_mode_defaults_to_use_and_the_run_conf_wins_over_the_environment():
    assert cache.cache_mode(None, env={}) == "use"
    assert cache.cache_mode({}, env={"MLBATCH_CACHE": "refresh"}) == "refresh"
    assert cache.cache_mode({"cache": "use"}, env={"MLBATCH_CACHE": "refresh"}) == "use"
    assert cache.cache_mode({"cache": "Refresh"}, env={}) == "refresh"
    with pytest.raises(ValueError, match="expected one of 'use', 'refresh'"):
        cache.cache_mode({"cache": "off"}, env={})
    with pytest.raises(ValueError, match="MLBATCH_CACHE"):
        cache.cache_mode(None, env={"MLBATCH_CACHE": "yes"})


# --- refresh ------------------------------------------------------------------------------

def test_uncommit_withdraws_the_manifests_then_marks_the_run(tmp_path):
    output = str(tmp_path / "key")
    for i in range(2):
        artifacts.write_bytes(artifacts.join(output, f"shard-{i:05d}", "data.bin"), b"x")
        artifacts.write_json(artifacts.shard_manifest_uri(output, i), {"shard_index": i, "shard_count": 2})
    artifacts.write_json(artifacts.step_manifest_uri(output), {"shard_count": 2})
    assert cache.refreshed_by(output) is None

    cache.uncommit(output, "run-2")

    assert artifacts.missing_shards(output, 2) == [0, 1]
    assert not artifacts.exists(artifacts.step_manifest_uri(output))
    assert (tmp_path / "key" / "shard-00001" / "data.bin").exists()  # replaced later, atomically
    assert cache.refreshed_by(output) == "run-2"


# --- locks -----------------------------------------------------------------------------------

def test_a_held_lock_blocks_others_until_released(tmp_path):
    uri = str(tmp_path / "k.lock")
    first, second = LeaseLock(uri, run_id="run-a"), LeaseLock(uri, run_id="run-b")
    assert first.try_acquire()
    try:
        assert not second.try_acquire()
        assert second.blocked_by is not None and second.blocked_by.run_id == "run-a"
        body = json.loads(Path(uri).read_text())
        assert body["holder"]["run_id"] == "run-a" and body["holder"]["pid"] == os.getpid()
        assert body["expires_at"] > time.time()
    finally:
        first.release()
    assert not Path(uri).exists()
    assert second.try_acquire()
    second.release()


def test_an_expired_lease_is_broken(tmp_path):
    uri = str(tmp_path / "k.lock")
    holder = LeaseLock(uri, run_id="run-a", lease_s=0.3, renew_s=3600)  # never renewed: as if it hung
    assert holder.try_acquire()
    other = LeaseLock(uri, run_id="run-b")
    assert not other.try_acquire()
    time.sleep(0.4)
    assert other.try_acquire()
    assert read_lease(uri).run_id == "run-b"
    holder.release()  # no longer ours: must not remove run-b's lock
    assert read_lease(uri).run_id == "run-b"
    other.release()


def test_a_dead_holder_on_this_host_is_broken_at_once(tmp_path):
    uri = str(tmp_path / "k.lock")
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)
    import socket

    Path(uri).write_text(json.dumps({
        "holder": {"run_id": "run-dead", "host": socket.gethostname(), "pid": dead_pid, "token": "t"},
        "expires_at": time.time() + 3600,
    }))
    lock = LeaseLock(uri, run_id="run-b")
    assert lock.try_acquire()
    assert read_lease(uri).run_id == "run-b"
    lock.release()


def test_a_live_holder_elsewhere_is_waited_for(tmp_path):
    uri = str(tmp_path / "k.lock")
    Path(uri).write_text(json.dumps({
        "holder": {"run_id": "run-remote", "host": "another-host", "pid": 1, "token": "t"},
        "expires_at": time.time() + 3600,
    }))
    lock = LeaseLock(uri, run_id="run-b", poll_s=0.05)
    waited_for = []
    with pytest.raises(TimeoutError, match="run-remote"):
        lock.acquire(on_wait=waited_for.append, timeout_s=0.3)
    assert [lease.run_id for lease in waited_for] == ["run-remote"]  # told once, not on every poll


def test_the_heartbeat_keeps_a_short_lease_alive(tmp_path):
    uri = str(tmp_path / "k.lock")
    holder = LeaseLock(uri, run_id="run-a", lease_s=0.5, renew_s=0.1)
    assert holder.try_acquire()
    try:
        first_expiry = read_lease(uri).expires_at
        time.sleep(1.2)  # more than twice the lease
        assert read_lease(uri).expires_at > first_expiry
        assert not LeaseLock(uri, run_id="run-b").try_acquire()
        assert not holder.lost
    finally:
        holder.release()


def test_contending_threads_compute_a_key_once_and_the_others_reuse_it(tmp_path):
    uri = str(tmp_path / "k.lock")
    result = tmp_path / "result.txt"
    computed, reused, waited = [], [], []
    start = threading.Barrier(4)

    def step(name: str) -> None:
        start.wait()
        lock = LeaseLock(uri, run_id=name, poll_s=0.02)
        lock.acquire(on_wait=lambda lease: waited.append(name))
        try:
            if result.exists():
                reused.append(name)
            else:
                time.sleep(0.3)  # the computation
                result.write_text(name)
                computed.append(name)
        finally:
            lock.release()

    threads = [threading.Thread(target=step, args=(f"run-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(computed) == 1
    assert sorted(computed + reused) == [f"run-{i}" for i in range(4)]
    assert set(waited) == set(reused)
    assert not Path(uri).exists()
