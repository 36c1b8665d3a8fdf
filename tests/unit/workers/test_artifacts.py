"""Artifact IO: atomic writes, shard manifests, step commits (local paths and memory://)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest

from workers import artifacts
from workers.errors import BadInput, MissingShards

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["local", "memory"])
def base(request, tmp_path) -> str:
    """A step output URI on the local disk and on an in-memory (remote-style) filesystem."""
    if request.param == "local":
        return str(tmp_path / "step")
    return f"memory://mlbatch-tests/{uuid.uuid4().hex}/step"


def _commit_shard(output: str, i: int, n: int, counts: dict, metrics: dict | None = None) -> dict:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return artifacts.write_shard_manifest(
        output, worker="check.noop", shard_index=i, shard_count=n, try_number=1, params={},
        counts=counts, metrics=metrics or {}, outputs={"data": artifacts.join(output, f"d{i}")},
        started_at=start, finished_at=start + timedelta(seconds=1.5),
    )


def test_paths():
    assert artifacts.shard_dir("s3://b/run/", 7) == "s3://b/run/shard-00007"
    assert artifacts.shard_manifest_uri("/x/y", 0) == "/x/y/shard-00000/manifest.json"
    assert artifacts.step_manifest_uri("/x/y") == "/x/y/manifest.json"


def test_round_trips(base):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    artifacts.write_bytes(artifacts.join(base, "raw.bin"), b"\x00\x01")
    artifacts.write_json(artifacts.join(base, "x.json"), {"n": np.int64(3), "f": np.float32(0.5)})
    artifacts.write_parquet(artifacts.join(base, "t.parquet"), df)
    artifacts.write_joblib(artifacts.join(base, "m.joblib"), {"model": [1, 2]})

    assert artifacts.read_bytes(artifacts.join(base, "raw.bin")) == b"\x00\x01"
    assert artifacts.read_json(artifacts.join(base, "x.json")) == {"n": 3, "f": 0.5}
    pd.testing.assert_frame_equal(artifacts.read_parquet(artifacts.join(base, "t.parquet")), df)
    assert artifacts.read_joblib(artifacts.join(base, "m.joblib")) == {"model": [1, 2]}


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        artifacts.write_json(str(tmp_path / "bad.json"), {"auc": float("nan")})
    assert not (tmp_path / "bad.json").exists()


def test_atomic_write_leaves_only_the_target(tmp_path):
    target = tmp_path / "out" / "data.parquet"
    artifacts.write_parquet(str(target), pd.DataFrame({"a": range(100)}))
    artifacts.write_json(str(tmp_path / "out" / "manifest.json"), {"ok": True})
    assert sorted(os.listdir(tmp_path / "out")) == ["data.parquet", "manifest.json"]


def test_crash_inside_writer_leaves_no_file(tmp_path):
    target = tmp_path / "data.bin"
    with pytest.raises(RuntimeError):
        with artifacts.open_atomic(str(target)) as fh:
            fh.write(b"half of the data")
            raise RuntimeError("killed mid-write")
    assert os.listdir(tmp_path) == []


def test_crash_keeps_previous_version(base):
    uri = artifacts.join(base, "data.bin")
    artifacts.write_bytes(uri, b"version 1")

    class Exploding:
        def to_parquet(self, fh, index=False):
            fh.write(b"PAR1 partial")
            raise OSError("disk vanished")

    with pytest.raises(OSError):
        artifacts.write_parquet(uri, Exploding())
    assert artifacts.read_bytes(uri) == b"version 1"
    if "://" not in base:
        assert os.listdir(base) == ["data.bin"]


def test_shard_manifest_fields(tmp_path):
    m = _commit_shard(str(tmp_path), 2, 4, {"rows": 5})
    on_disk = json.loads((tmp_path / "shard-00002" / "manifest.json").read_text())
    assert on_disk == m
    assert m["duration_s"] == 1.5
    assert m["started_at"].startswith("2026-01-01T00:00:00")
    assert (m["shard_index"], m["shard_count"], m["counts"]) == (2, 4, {"rows": 5})


def test_missing_shards(base):
    assert artifacts.missing_shards(base, 3) == [0, 1, 2]
    _commit_shard(base, 1, 3, {})
    # a data file without its manifest is not a committed shard
    artifacts.write_bytes(artifacts.join(artifacts.shard_dir(base, 0), "data.bin"), b"x")
    assert artifacts.missing_shards(base, 3) == [0, 2]
    _commit_shard(base, 0, 3, {})
    _commit_shard(base, 2, 3, {})
    assert artifacts.missing_shards(base, 3) == []


def test_commit_step_aggregates_counts(base):
    _commit_shard(base, 0, 3, {"rows": 10, "flagged": 1, "label": "x"}, {"auc": 0.7})
    _commit_shard(base, 1, 3, {"rows": 11, "flagged": 0})
    _commit_shard(base, 2, 3, {"rows": 12, "flagged": 4, "ratio": 0.5})
    step = artifacts.commit_step(base, 3, extra={"metrics": {"auc": 0.8}, "cache_key": "abc"})

    assert step["counts"] == {"rows": 33, "flagged": 5, "ratio": 0.5}
    assert step["metrics"] == {"auc": 0.8}  # shard metrics are not summed across shards
    assert step["cache_key"] == "abc"
    assert [s["shard_index"] for s in step["shards"]] == [0, 1, 2]
    assert artifacts.read_step_manifest(base) == step
    assert artifacts.step_output_uris(step, "data") == [artifacts.join(base, f"d{i}") for i in range(3)]


def test_commit_single_shard_keeps_its_metrics(base):
    _commit_shard(base, 0, 1, {"rows": 3}, {"auc": 0.9})
    assert artifacts.commit_step(base, 1)["metrics"] == {"auc": 0.9}


def test_commit_refuses_missing_shards(base):
    _commit_shard(base, 0, 3, {"rows": 1})
    with pytest.raises(MissingShards) as info:
        artifacts.commit_step(base, 3)
    assert info.value.missing == [1, 2]
    assert not artifacts.exists(artifacts.step_manifest_uri(base))


def test_commit_refuses_manifest_of_another_sharding(tmp_path):
    _commit_shard(str(tmp_path), 0, 2, {})
    with pytest.raises(ValueError, match="expected 0/1"):
        artifacts.commit_step(str(tmp_path), 1)


def test_uncommitted_input_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match=f"input step at {tmp_path} has no committed manifest"):
        artifacts.read_step_manifest(str(tmp_path))


def test_memory_fs_is_used_for_remote_uris():
    uri = f"memory://mlbatch-tests/{uuid.uuid4().hex}/a.json"
    artifacts.write_json(uri, [1])
    stored = fsspec.filesystem("memory").cat_file(uri.removeprefix("memory://"))
    assert json.loads(stored) == [1]
    assert not Path("memory:").exists()  # not mistaken for a local relative path


def test_import_is_light():
    """The Airflow side imports artifacts at DAG parse time: no pandas, numpy or joblib."""
    code = ("import sys, workers.artifacts; "
            "heavy = {'pandas', 'numpy', 'joblib', 'sklearn'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() == "[]"


def test_the_step_output_owns_the_layout_and_the_shorthands_follow_it(tmp_path):
    from workers.step_output import MANIFEST, StepOutput, shard_folder

    output = StepOutput(str(tmp_path / "step"))
    assert artifacts.MANIFEST == MANIFEST
    assert shard_folder(3) == "shard-00003"
    assert artifacts.shard_dir(output.uri, 3) == output.shard_dir(3) == f"{output.uri}/shard-00003"
    assert artifacts.step_manifest_uri(output.uri) == output.manifest_uri == f"{output.uri}/manifest.json"


def test_uncommit_withdraws_the_step_commit_and_every_shard_commit_but_keeps_the_data(tmp_path):
    from workers.step_output import StepOutput

    output = StepOutput(str(tmp_path / "step"))
    started = datetime.now(timezone.utc)
    for index in range(2):
        artifacts.write_bytes(artifacts.join(output.shard_dir(index), "data.bin"), b"x")
        output.commit_shard(index, worker="check.noop", shard_count=2, try_number=1, params={}, counts={"rows": 1},
                            metrics={}, outputs={}, started_at=started)
    assert output.commit(2)["counts"] == {"rows": 2} and output.manifest() is not None
    output.uncommit()
    assert output.manifest() is None and output.missing(2) == [0, 1]
    assert (tmp_path / "step" / "shard-00001" / "data.bin").read_bytes() == b"x"


def test_the_bad_input_line_is_written_and_read_by_the_wire_contract():
    from workers import wire

    line = wire.bad_input_line("column churn\nis missing")
    assert line == "mlbatch-bad-input: column churn is missing"
    assert wire.bad_input_reason(line) == "column churn is missing"
    assert wire.bad_input_reason("Traceback (most recent call last):") is None
