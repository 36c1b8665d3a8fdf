"""What AWS Batch and ECS share (backends/aws/): one backoff rule, the Progress of a look, a missing try."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from mlbatch.backends.aws.throttle import call_with_backoff, is_throttled
from mlbatch.backends.aws_batch.backend import AwsBatchBackend, BatchHandle
from mlbatch.backends.aws_batch.outcome import progress as batch_progress
from mlbatch.backends.ecs.backend import EcsBackend, EcsHandle
from mlbatch.backends.failures import FailureClass
from mlbatch.backends.protocols import Progress
from mlbatch.settings import Settings

BACKENDS = Path(__file__).resolve().parents[3] / "plugins" / "mlbatch" / "backends"


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "SubmitJob")


def test_throttled_calls_back_off_with_the_providers_rule_and_others_raise_at_once():
    answers = [_error("TooManyRequestsException"), _error("ThrottlingException"), "ok"]
    pauses: list[float] = []

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert call_with_backoff(call, sleep=pauses.append) == "ok"
    assert len(pauses) == 2 and all(0 < p < 10 for p in pauses)
    assert is_throttled(_error("ThrottlingException")) and not is_throttled(_error("ClientException"))
    assert not is_throttled(ValueError("no response"))
    with pytest.raises(ClientError, match="ClientException"):
        call_with_backoff(lambda: (_ for _ in ()).throw(_error("ClientException")), sleep=pytest.fail)
    throttled: list[float] = []
    with pytest.raises(ClientError, match="Throttling"):
        call_with_backoff(lambda: (_ for _ in ()).throw(_error("ThrottlingException")), sleep=throttled.append,
                          attempts=3)
    assert len(throttled) == 2  # the last throttle is the caller's error


def test_a_job_batch_no_longer_knows_is_missing():
    assert batch_progress(None, now=0, start_deadline=None) is Progress.missing
    assert batch_progress({"status": "RUNNING"}, now=0, start_deadline=None) is Progress.waiting


@pytest.mark.parametrize("backend, handle", [
    (AwsBatchBackend, BatchHandle(job_id="j1", job_name="n", queue="q", name="d.s", indices=[2, 5], shard_count=8,
                                  memory_mib=1024, vcpu=1, gpu=0, spot=False, submitted_at=1.0)),
    (EcsBackend, EcsHandle(cluster="ml", name="d.s", tasks={2: "arn:t/2", 5: "arn:t/5"}, shard_count=8,
                           memory_mib=1024, vcpu=1, gpu=0, spot=False, capacity_provider="FARGATE", submitted_at=1.0)),
])
def test_a_missing_try_fails_every_shard_as_infrastructure_without_asking_aws(backend, handle):
    lines: list[str] = []
    # no client at all: a missing try is answered from the handle alone
    instance = backend(log=lines.append, settings=Settings(), **{"jobs" if backend is AwsBatchBackend else "tasks":
                                                                 object()})
    result = instance.finish(handle, Progress.missing)
    assert [o.index for o in result.outcomes] == [2, 5]
    assert {o.failure for o in result.outcomes} == {FailureClass.infrastructure}
    assert "no longer" in result.outcomes[0].reason or "gone" in result.outcomes[0].reason
    assert FailureClass.infrastructure.retryable


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("package, other", [("aws_batch", "ecs"), ("ecs", "aws_batch"), ("aws", "aws_batch"),
                                            ("aws", "ecs")])
def test_batch_and_ecs_share_aws_and_never_import_each_other(package, other):
    for path in (BACKENDS / package).glob("*.py"):
        bad = {name for name in _imports(path) if name.startswith(f"mlbatch.backends.{other}")}
        assert not bad, f"{path.name} imports {bad}"
