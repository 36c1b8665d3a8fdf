"""GPU-seconds in the run summary count only where a GPU was there to use."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlbatch.backends.jobs import JobResult, ShardOutcome
from mlbatch.run import cost

RESULT = JobResult(name="b.embed", shard_count=2, memory_mib=3072,
                   outcomes=[ShardOutcome(index=0, exit_code=0, duration_s=10.0),
                             ShardOutcome(index=1, exit_code=0, duration_s=5.0)])


@pytest.fixture
def devices(monkeypatch):
    """The NVIDIA device nodes this machine has, and the patterns looked up."""
    found: list[str] = []
    patterns: list[str] = []
    monkeypatch.setattr(cost.glob, "glob", lambda pattern: patterns.append(pattern) or list(found))
    return SimpleNamespace(found=found, patterns=patterns)


def step(backend: str, gpu: int) -> SimpleNamespace:
    return SimpleNamespace(backend=backend, vcpu=1.0, gpu=gpu)


def test_a_local_gpu_step_on_a_machine_without_a_gpu_used_no_gpu_seconds(devices):
    assert cost.usage(RESULT, step("local", 1))["usage"]["gpu_s"] == 0.0
    assert devices.patterns == ["/dev/nvidia[0-9]*"]


def test_a_local_gpu_step_where_there_is_a_gpu_counts_them(devices):
    devices.found.append("/dev/nvidia0")
    assert cost.usage(RESULT, step("local", 1))["usage"]["gpu_s"] == 15.0


def test_a_container_backend_bills_the_gpu_it_reserved(devices):
    assert cost.usage(RESULT, step("batch", 2))["usage"]["gpu_s"] == 30.0
    assert devices.patterns == []


def test_a_cpu_step_has_none(devices):
    assert cost.usage(RESULT, step("local", 0))["usage"] == {
        "backend": "local", "vcpu_s": 15.0, "gpu_s": 0.0, "memory_mib": 3072, "spot": False}
