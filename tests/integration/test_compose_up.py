"""docker-compose.yaml, up for real: the stack built from the offline bases (Postgres included), the
UI's REST API logged in to, a small batch run to success in local mode, each step shard in a
container of its own started through the host's Docker socket, then the stack taken down."""
from __future__ import annotations

import contextlib
import threading
import urllib.error
import uuid

import pytest
import yaml

from mlbatch.cli.scaffold import create_loader
from tests.containers.images import ImageBuildError
from tests.integration.airflow_stack import wait_for
from tests.integration.compose_images import ensure_compose_images
from tests.integration.compose_stack import ComposeStack, prepare

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(2400)]

DAG_ID = "compose_check"
SHARDS = {"features": 1, "train": 2, "ensemble": 1}  # step -> shards: four containers in all


def small_batch(image: str) -> dict:
    return {
        "description": "A small churn model: the compose stack's own check",
        "schedule": None,
        "defaults": {"backend": "local", "image": image, "resources": {"vcpu": 1, "memory": "1Gi"},
                     "retries": 0, "timeout": "10m"},
        "steps": {
            "features": {"run": "features.synthetic", "params": {"rows": 2000, "seed": 3}},
            "train": {"run": "train.gbdt", "needs": ["features"], "shards": SHARDS["train"],
                      "params": {"max_iter": 20}},
            "ensemble": {"run": "ensemble.average", "needs": ["train"]},
        },
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, base_image, worker_image):
    try:
        built = ensure_compose_images(docker_client, base_image)
    except ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)
    directory = tmp_path_factory.mktemp("compose")
    stack = prepare(directory, f"mlbatch-check-{uuid.uuid4().hex[:8]}",
                    {"MLBATCH_AIRFLOW_IMAGE": built.airflow, "POSTGRES_IMAGE": built.postgres})
    spec = small_batch(worker_image)  # backend: local in the spec; the stack's MLBATCH_BACKEND=docker wins
    (directory / "dags" / "specs" / f"{DAG_ID}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    create_loader(directory / "dags", DAG_ID)  # the loader `mlbatch new` writes
    try:
        up = stack.compose("up", "--detach", "--no-build", "--pull", "never", "--wait", "--wait-timeout", "600",
                           timeout=900)
        assert up.returncode == 0, f"compose up failed:\n{up.stdout}{up.stderr}\n{stack.logs()}"
        yield stack
    finally:
        down = stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
        assert down.returncode == 0, down.stdout + down.stderr
        assert stack.compose("ps", "--all", "--quiet").stdout.strip() == ""


def test_stack_runs_a_batch_with_each_step_in_its_own_container(stack: ComposeStack, docker_client, worker_image):
    services = set(stack.compose("ps", "--services", "--status", "running").stdout.split())
    assert {"postgres", "api-server", "scheduler", "dag-processor", "triggerer"} <= services
    stack.log_in()
    assert wait_for(lambda: _dag_is_there(stack), within_s=180), stack.logs()

    starts = ContainerStarts(docker_client, run_label=f"mlbatch.dag={DAG_ID}")
    try:
        stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        run_id = stack.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})["dag_run_id"]
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"
        wait_for(lambda: _run_state(stack, path) in ("success", "failed"), within_s=900, every_s=5)
    finally:
        starts.close()
    tasks = {ti["task_id"]: ti["state"] for ti in stack.api("GET", f"{path}/taskInstances")["task_instances"]}
    assert stack.api("GET", path)["state"] == "success", f"{tasks}\n{stack.logs(120)}"

    started = starts.of_run(run_id)
    assert sorted(started) == sorted((step, str(shard)) for step, count in SHARDS.items() for shard in range(count))
    assert len(set(started.values())) == len(started)  # a container of its own for each shard of each step
    assert {image for _, image in started.values()} == {worker_image}
    # the step containers wrote the batch's outputs into the artifact folder shared with the host
    assert any(stack.artifacts.rglob("*")), "nothing was written under the artifact root"


def _run_state(stack: ComposeStack, path: str) -> str | None:
    return _busy_or(lambda: stack.api("GET", path)["state"])


def _dag_is_there(stack: ComposeStack) -> bool | None:
    return _busy_or(lambda: DAG_ID in {dag["dag_id"] for dag in stack.api("GET", "/api/v2/dags")["dags"]})


def _busy_or(ask):
    """What `ask` gets from the API; None while the api-server is too busy to answer (2 CPUs, tasks starting)."""
    try:
        return ask()
    except (urllib.error.URLError, TimeoutError):
        return None


class ContainerStarts:
    """The engine's container start events of one label, recorded while a run goes on (the docker
    backend removes a container once it is done, so they are what is left to see of each one)."""

    def __init__(self, client, run_label: str) -> None:
        self.events: list[dict] = []
        self._stream = client.events(decode=True, filters={"type": "container", "event": "start", "label": run_label})
        self._thread = threading.Thread(target=self._record, daemon=True)
        self._thread.start()

    def _record(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends when close() cuts it
            for event in self._stream:
                self.events.append(event)

    def close(self) -> None:
        self._stream.close()  # after the run's success: each of its containers started long before
        self._thread.join(10)

    def of_run(self, run_id: str) -> dict[tuple[str, str], tuple[str, str]]:
        """(step, shard) -> (container id, image) of each container started for the run."""
        started = {}
        for event in self.events:
            labels = event["Actor"]["Attributes"]
            if labels.get("mlbatch.run") == run_id:
                started[(labels["mlbatch.step"], labels["mlbatch.shard"])] = (event["Actor"]["ID"], labels["image"])
        return started
