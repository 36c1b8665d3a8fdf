"""`mlbatch cache ls|gc` on a store laid out by hand: ages, uncommitted leftovers, protected keys."""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlbatch.cache import store as cache_store
from mlbatch.cache.locks import LeaseLock
from mlbatch.cli.main import main
from workers import artifacts

NOW = datetime.now(timezone.utc)


def make_key(root: Path, name: str, *, committed_days_ago: float | None, run_id: str = "manual__1",
             written_days_ago: float = 0.0) -> Path:
    """A key directory with one shard; committed (a step manifest) unless committed_days_ago is None."""
    key_dir = root / name
    output = str(key_dir)
    artifacts.write_bytes(artifacts.join(output, "shard-00000", "data.bin"), b"x" * 1000)
    artifacts.write_json(artifacts.shard_manifest_uri(output, 0), {"shard_index": 0, "shard_count": 1})
    if committed_days_ago is not None:
        committed = (NOW - timedelta(days=committed_days_ago)).isoformat(timespec="milliseconds")
        artifacts.write_json(artifacts.step_manifest_uri(output), {
            "shard_count": 1, "committed_at": committed, "run": {"run_id": run_id}})
    stamp = (NOW - timedelta(days=written_days_ago)).timestamp()
    for path in key_dir.rglob("*"):
        os.utime(path, (stamp, stamp))
    return key_dir


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "artifacts"
    step = root / "churn" / "train"
    make_key(step, "aaaaaaaaaaaaaaaaaaaa", committed_days_ago=60, run_id="old_run", written_days_ago=60)
    make_key(step, "bbbbbbbbbbbbbbbbbbbb", committed_days_ago=1, run_id="new_run")
    make_key(step, "cccccccccccccccccccc", committed_days_ago=None, written_days_ago=45)  # a try that died
    make_key(step, "dddddddddddddddddddd", committed_days_ago=None, written_days_ago=2)  # maybe in flight
    make_key(step, "eeeeeeeeeeeeeeeeeeee", committed_days_ago=90, run_id="latest_run", written_days_ago=90)
    make_key(step, "ffffffffffffffffffff", committed_days_ago=50, run_id="locked_run", written_days_ago=50)
    make_key(root / "other" / "features", "9999999999999999999a", committed_days_ago=70, written_days_ago=70)
    artifacts.publish_latest(str(root), "churn", "train", str(step / "eeeeeeeeeeeeeeeeeeee"), "latest_run")
    (step / "_tries" / "run-x").mkdir(parents=True)  # not a key: left alone
    (step / "_tries" / "run-x" / "memory.json").write_text("{}")
    return root


def by_key(items):
    return {entry.key: entry for entry in items}


def test_ls_shows_every_key_with_its_commit_run_and_size(store):
    items = by_key(cache_store.entries(str(store)))
    assert set(items) == {"a" * 20, "b" * 20, "c" * 20, "d" * 20, "e" * 20, "f" * 20, "9" * 19 + "a"}
    old = items["a" * 20]
    assert (old.dag_id, old.step, old.run_id) == ("churn", "train", "old_run")
    assert old.committed_at is not None and abs((NOW - old.committed_at).days - 60) <= 1
    assert old.size > 1000
    assert items["c" * 20].committed_at is None
    assert items["e" * 20].latest and not items["a" * 20].latest
    assert set(by_key(cache_store.entries(str(store), "other"))) == {"9" * 19 + "a"}


def test_gc_deletes_old_keys_but_never_the_latest_nor_a_locked_one(store):
    step = store / "churn" / "train"
    held = LeaseLock(str(step / "ffffffffffffffffffff.lock"), run_id="locked_run")
    assert held.try_acquire()
    try:
        result = cache_store.gc(str(store), timedelta(days=30), log=lambda line: None)
    finally:
        held.release()
    deleted = {entry.key for entry in result.deleted}
    assert deleted == {"a" * 20, "c" * 20, "9" * 19 + "a"}
    assert {entry.key: why for entry, why in result.kept} == {"e" * 20: "latest", "f" * 20: "locked by run locked_run"}
    remaining = {p.name for p in step.iterdir()}
    assert remaining == {"b" * 20, "d" * 20, "e" * 20, "f" * 20, "latest.json", "_tries"}
    assert not (store / "other" / "features" / ("9" * 19 + "a")).exists()
    assert result.freed > 3000


def test_gc_dry_run_deletes_nothing(store):
    before = sorted(str(p) for p in store.rglob("*"))
    lines: list[str] = []
    result = cache_store.gc(str(store), timedelta(days=30), dry_run=True, log=lines.append)
    assert {entry.key for entry in result.deleted} == {"a" * 20, "c" * 20, "f" * 20, "9" * 19 + "a"}
    assert sorted(str(p) for p in store.rglob("*")) == before
    assert any(line.startswith("would delete churn/train/" + "a" * 20) for line in lines)


def test_gc_deletes_an_old_key_whose_lock_lease_expired(store):
    step = store / "churn" / "train"
    stale = LeaseLock(str(step / "ffffffffffffffffffff.lock"), run_id="gone", lease_s=0.01, renew_s=3600)
    assert stale.try_acquire()  # never renewed: as if its holder hung, the lease runs out
    time.sleep(0.05)
    try:
        result = cache_store.gc(str(store), timedelta(days=30), log=lambda line: None)
    finally:
        stale.release()
    assert "f" * 20 in {entry.key for entry in result.deleted}
    assert not (step / "ffffffffffffffffffff.lock").exists()


def test_cache_command_line(store, capsys):
    assert main(["cache", "ls", "--root", str(store), "--dag", "churn"]) == 0
    out = capsys.readouterr().out
    assert "churn/train/" + "a" * 20 in out and "old_run" in out and "uncommitted" in out
    assert "other/features" not in out
    assert "6 key(s)" in out

    assert main(["cache", "gc", "--older-than", "30d", "--root", str(store), "--dry-run"]) == 0
    assert "would delete" in capsys.readouterr().out
    assert (store / "churn" / "train" / ("a" * 20)).exists()

    assert main(["cache", "gc", "--older-than", "30d", "--root", str(store)]) == 0
    assert not (store / "churn" / "train" / ("a" * 20)).exists()

    assert main(["cache", "gc", "--older-than", "soon", "--root", str(store)]) == 2
    assert "--older-than" in capsys.readouterr().err
