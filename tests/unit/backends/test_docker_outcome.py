"""How a container's end is classified, what a start error tells the user, and what to do with earlier tries."""
from __future__ import annotations

import pytest
from docker.errors import APIError, ImageNotFound

from mlbatch.backends.docker.follow import lines_of, working_set_mib
from mlbatch.backends.docker.reattach import Action, Found, plan_shard
from mlbatch.backends.docker.outcome import GPU_FIX, classify_state, image_missing, start_failure
from mlbatch.backends.failures import FailureClass


def _classify(state: dict, killed_for: str | None = None, tail: tuple[str, ...] = ()):
    return classify_state(state, killed_for=killed_for, memory_mib=512, timeout_s=60, stderr_tail=tail)


def test_exit_zero_is_success_even_after_a_stop() -> None:
    assert _classify({"ExitCode": 0}) == (None, "")
    assert _classify({"ExitCode": 0}, killed_for="timeout") == (None, "")


def test_the_kernels_oom_kill_is_oom_with_the_budget() -> None:
    failure, reason = _classify({"ExitCode": 137, "OOMKilled": True})
    assert failure is FailureClass.oom
    assert "512 MiB memory limit" in reason and "kernel" in reason


def test_a_sigkill_without_oom_is_from_outside() -> None:
    failure, reason = _classify({"ExitCode": 137, "OOMKilled": False})
    assert failure is FailureClass.infrastructure and "SIGKILL" in reason


def test_our_stops_win_over_the_exit_status() -> None:
    assert _classify({"ExitCode": 143}, killed_for="timeout") == (FailureClass.timeout, "ran past its 1m timeout")
    assert _classify({"ExitCode": 137, "OOMKilled": True}, killed_for="cancel") == (
        FailureClass.infrastructure, "cancelled")
    assert _classify({}, killed_for="cancel")[0] is FailureClass.infrastructure  # removed before it was read


def test_bad_input_and_code_errors_use_the_shared_rules() -> None:
    assert _classify({"ExitCode": 65}, tail=("mlbatch-bad-input: no column 'churn'",)) == (
        FailureClass.bad_input, "no column 'churn'")
    failure, reason = _classify({"ExitCode": 1}, tail=("Traceback", "ValueError: boom"))
    assert failure is FailureClass.code_error and reason == "exit code 1: ValueError: boom"


def test_no_exit_status_is_infrastructure() -> None:
    failure, reason = _classify({"ExitCode": -1, "Error": "runtime went away"})
    assert failure is FailureClass.infrastructure and "runtime went away" in reason


def test_start_errors_say_the_fix() -> None:
    missing = ImageNotFound("No such image: mlbatch-worker:cpu")
    assert start_failure("mlbatch-worker:cpu", missing) == (
        "image 'mlbatch-worker:cpu' is not on the Docker host (no retry can fix that): build it on that host: make "
        "images (or docker build -f Dockerfile.worker -t mlbatch-worker:cpu .), or pull it from your registry: "
        "docker pull mlbatch-worker:cpu, or [docker] pull = true")
    assert image_missing(missing) and not image_missing(APIError("500", explanation="Conflict"))
    no_gpu = APIError("500", explanation='could not select device driver "" with capabilities: [[gpu]]')
    assert start_failure("w:gpu", no_gpu) == (
        'the Docker host has no GPU for this step (could not select device driver "" with capabilities: [[gpu]]): '
        + GPU_FIX)
    assert start_failure("w", APIError("409", explanation="Conflict")) == "the container could not start: Conflict"


def test_log_chunks_become_whole_lines() -> None:
    assert list(lines_of([b"a\nb", b"c\r\n", b"", b"tail"])) == ["a", "bc", "tail"]
    assert list(lines_of([b"\xff\n"])) == ["\ufffd"]


def test_16_mib_without_a_newline_come_out_as_capped_lines_while_they_stream() -> None:
    """A progress bar redrawn with \r: 64 KiB lines as the local backend logs them, none waiting for the end."""
    chunk = b"42%|####   |\r" * 1260  # about 16 KiB per write, as a bar's frames come
    fed = 0
    produced: list[tuple[int, str]] = []

    def chunks():
        nonlocal fed
        while fed < 16 * 1024 * 1024:
            fed += len(chunk)
            yield chunk

    for line in lines_of(chunks()):
        produced.append((fed, line))
    assert all(len(line.encode()) <= 64 * 1024 for _, line in produced)
    assert len(produced) == -(-fed // (64 * 1024))  # every byte logged once, in 64 KiB lines
    # each line is given out as soon as it is full: the pending buffer never outgrows one line and a write
    assert all(fed_then - 64 * 1024 * (i + 1) < 64 * 1024 + len(chunk) for i, (fed_then, _) in enumerate(produced))


def test_working_set_leaves_out_the_page_cache() -> None:
    mib = 1024 * 1024
    assert working_set_mib({"memory_stats": {"usage": 300 * mib, "stats": {"total_inactive_file": 100 * mib}}}) == 200
    assert working_set_mib({"memory_stats": {"usage": 50 * mib, "stats": {"inactive_file": 10 * mib}}}) == 40
    assert working_set_mib({"memory_stats": {}}) is None


def _found(id_: str, status: str, exit_code: int = 0, created: str = "2026-01-01T00:00:00Z") -> Found:
    return Found.of({"Id": id_, "Created": created, "State": {"Status": status, "ExitCode": exit_code}})


def test_nothing_there_starts_afresh() -> None:
    assert plan_shard([]).action is Action.start


def test_a_live_container_is_adopted_and_failed_ones_removed() -> None:
    plan = plan_shard([_found("old", "exited", 1, "2026-01-01T00:00:00Z"), _found("live", "running")])
    assert plan.action is Action.adopt and plan.target.id == "live"
    assert [f.id for f in plan.stale] == ["old"]


def test_a_finished_success_is_collected_not_rerun() -> None:
    plan = plan_shard([_found("ok", "exited", 0, "2026-01-01T00:00:01Z"), _found("bad", "exited", 137)])
    assert plan.action is Action.collect and plan.target.id == "ok"
    assert [f.id for f in plan.stale] == ["bad"]


@pytest.mark.parametrize("status,exit_code", [("exited", 1), ("exited", 137), ("dead", 0)])
def test_only_failures_left_start_afresh_after_removing_them(status: str, exit_code: int) -> None:
    plan = plan_shard([_found("x", status, exit_code)])
    assert plan.action is Action.start and [f.id for f in plan.stale] == ["x"]


def test_a_missing_image_is_pulled_only_when_the_settings_say_so() -> None:
    # no registry is reachable here: a mock client stands in, and the exact calls are checked
    from unittest import mock

    from mlbatch.backends.docker import client as engine_client

    client = mock.Mock()
    client.containers.create.side_effect = [ImageNotFound("No such image"), "container"]
    assert engine_client.create(client, {"image": "registry.example/w:1"}, pull=True) == "container"
    client.images.pull.assert_called_once_with("registry.example/w:1")
    assert client.containers.create.call_args_list == [mock.call(image="registry.example/w:1")] * 2

    client = mock.Mock()
    client.containers.create.side_effect = ImageNotFound("No such image")
    with pytest.raises(ImageNotFound):
        engine_client.create(client, {"image": "w:1"}, pull=False)
    client.images.pull.assert_not_called()


def test_an_unreachable_engine_fails_every_shard_as_infrastructure_saying_how_to_fix_it(tmp_path) -> None:
    from mlbatch.backends.docker import DockerBackend
    from mlbatch.backends.jobs import JobRequest
    from mlbatch.backends.slots import LocalSlots
    from mlbatch.settings import DockerSettings

    lines: list[str] = []
    backend = DockerBackend(log=lines.append, slots=LocalSlots(2, tmp_path),
                            settings=DockerSettings(host="tcp://127.0.0.1:9"))  # nothing listens on port 9
    result = backend.run(JobRequest(name="b.s", image="w", command=["list"], shard_count=2))
    assert [o.failure for o in result.outcomes] == [FailureClass.infrastructure] * 2
    assert result.outcomes[0].reason.startswith("cannot reach the Docker Engine at tcp://127.0.0.1:9: ")
    assert "start dockerd, or point DOCKER_HOST" in lines[0]
