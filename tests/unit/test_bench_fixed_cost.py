"""The fixed-cost benchmarks' helpers: Engine API call kinds, the bare `docker run` flags, build step timing."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.docker_overhead import api_kind, by_kind, cli_flags
from bench.image_rebuild import CHANGED, change, copy_checkout, slowest_steps
from mlbatch.backends.docker.config import HostFacts, container_kwargs
from mlbatch.backends.jobs import JobRequest
from tests.conftest import PROJECT


def test_api_kind_names_the_call_without_its_ids_or_query():
    container = "4c353b21fb109eda856ec54d70d1392f93236f36675b9bad31a04ddbbd6ddde4"
    assert api_kind("POST", f"/v1.41/containers/{container}/start") == "POST /containers/{id}/start"
    assert api_kind("DELETE", f"/v1.41/containers/{container}?v=False&force=True") == "DELETE /containers/{id}"
    assert api_kind("GET", "/v1.41/containers/json?all=1&filters=x") == "GET /containers/json"
    assert api_kind("POST", "/v1.41/containers/create?name=n") == "POST /containers/create"
    assert api_kind("GET", "/version") == "GET /version"


def test_by_kind_adds_up_each_kind_slowest_first():
    calls = [("GET /containers/{id}/json", 0.002), ("POST /containers/{id}/start", 0.25),
             ("GET /containers/{id}/json", 0.003)]
    assert by_kind(calls) == [("POST /containers/{id}/start", 1, 0.25), ("GET /containers/{id}/json", 2, 0.005)]


def test_the_bare_docker_run_gets_every_isolation_setting_of_the_backend(tmp_path):
    (tmp_path / "root").mkdir()
    request = JobRequest(name="b.noop", image="w:1", command=["run", "--request", "{}"], vcpu=1, memory_mib=512,
                         env={"MLBATCH_ARTIFACTS": str(tmp_path / "root")})
    flags = cli_flags(container_kwargs(request, 0, HostFacts(cpus=2)))
    pairs = set(zip(flags, flags[1:]))
    assert {("--network", "none"), ("--cap-drop", "ALL"), ("--security-opt", "no-new-privileges:true"),
            ("--pids-limit", "1024"), ("--cpus", "1"), ("--memory", f"{512 * 1024 * 1024}b"),
            ("--memory-swap", f"{512 * 1024 * 1024}b"), ("--user", "10001:10001"),
            ("--tmpfs", "/tmp:rw,nosuid,nodev,size=512m,mode=1777"),
            ("-v", f"{tmp_path / 'root'}:{tmp_path / 'root'}:ro")} <= pairs
    assert {"--read-only", "--init"} <= set(flags)
    assert ("-e", "MLBATCH_SHARD_INDEX=0") in pairs


def test_slowest_steps_times_each_step_until_the_next_and_the_last_until_the_end():
    lines = [(0.0, "Step 1/3 : FROM base"), (0.1, " ---> abc"), (0.2, "Step 2/3 : COPY --from=build /opt/venv /opt/venv"),
             (14.1, " ---> Using cache"), (14.2, "Step 3/3 : RUN python -m compileall -q workers"),
             (15.0, "Successfully tagged x")]
    assert slowest_steps(lines, 2) == [("COPY --from=build /opt/venv /opt/venv", 14.0),
                                       ("RUN python -m compileall -q workers", 0.8)]
    assert slowest_steps([], 3) == []


def test_the_rebuild_changes_one_file_of_a_copy_never_the_checkout(tmp_path: Path):
    checkout = copy_checkout(PROJECT, tmp_path)
    before = (PROJECT / CHANGED).read_text()
    change(checkout, 1)
    first = (checkout / CHANGED).read_text()
    change(checkout, 2)
    assert (PROJECT / CHANGED).read_text() == before
    assert first.startswith(before) and first != before and (checkout / CHANGED).read_text() != first
    assert (checkout / "Dockerfile.worker").is_file() and not list(checkout.rglob("__pycache__"))


def test_a_trigger_runs_to_its_first_event_as_the_triggerer_would_run_it():
    from airflow.triggers.base import TriggerEvent

    from bench.aws_peers import first_event

    class Trigger:
        def __init__(self, events):
            self.events = events

        async def run(self):
            for payload in self.events:
                yield TriggerEvent(payload)

    assert first_event(Trigger([{"state": "finished"}, {"state": "never read"}])) == {"state": "finished"}
    with pytest.raises(RuntimeError, match="Trigger ended without an event"):
        first_event(Trigger([]))
