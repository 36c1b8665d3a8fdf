"""The team's stack as documented: in a fresh clone, what `make compose` runs (`make images`, then
`mlbatch compose up`) brings the stack up healthy; then what it must not allow is checked with it up
(every listener on 127.0.0.1, no log server, the Docker socket only in the scheduler, .env and the
admin's password file 0600, nothing untagged left by the builds, small build contexts), a small
batch runs to success with each step shard in a container of its own, and the stack goes down."""
from __future__ import annotations

import contextlib
import ipaddress
import stat
import threading
import urllib.error
import uuid

import psutil
import pytest
import yaml

from mlbatch.cli.compose_images import LABEL
from mlbatch.cli.scaffold import create_loader
from tests.containers import images
from tests.integration.airflow_stack import wait_for
from tests.integration.compose_stack import PROJECT, ComposeStack, prepare

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.compose, pytest.mark.timeout(2400)]

DAG_ID = "compose_check"
SHARDS = {"features": 1, "train": 2, "ensemble": 1}  # step -> shards: four containers in all
LOG_SERVER_PORTS = {8793, 8794}  # Airflow's defaults for the worker's and the triggerer's log servers


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
    stack = prepare(tmp_path_factory.mktemp(f"mlbatch-clone-{uuid.uuid4().hex[:8]}"))  # the project's name
    # `make images`: the fixtures built the images; its last part names them and records them
    # (keeping every worker build: this machine's other checkouts may use theirs)
    images.publish(docker_client, base_image, worker_image, keep=1000,
                   images_env=stack.directory / ".mlbatch" / "images.env")
    spec = small_batch(images.DEFAULT_WORKER)  # the specs' default image; the stack's MLBATCH_BACKEND=docker wins
    (stack.directory / "dags" / "specs" / f"{DAG_ID}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    create_loader(stack.directory / "dags", DAG_ID)  # the loader `mlbatch new` writes
    try:
        up = stack.mlbatch("compose", "up", timeout=1800)
        stack.up_output = up.stdout + up.stderr
        assert up.returncode == 0, f"mlbatch compose up failed:\n{stack.up_output[-6000:]}\n{stack.logs()}"
        yield stack
    finally:
        down = stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
        assert down.returncode == 0, down.stdout + down.stderr
        assert stack.compose("ps", "--all", "--quiet").stdout.strip() == ""


def containers_of(stack: ComposeStack, docker_client) -> dict:
    """service -> container of the stack's project (running or exited)."""
    found = docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={stack.project}"})
    return {container.labels["com.docker.compose.service"]: container for container in found}


def test_up_says_where_the_ui_and_the_password_are(stack: ComposeStack):
    assert f"the stack is up: {stack.url}" in stack.up_output
    assert f"password in {stack.directory / 'config' / 'simple_auth_manager_passwords.json'}" in stack.up_output
    assert "Bake" not in stack.up_output  # built without buildx, and without its warning


def test_secrets_files_are_readable_by_their_owner_alone(stack: ComposeStack):
    for path in (stack.directory / ".env", stack.directory / "config" / "simple_auth_manager_passwords.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    env = stack.env
    assert env["POSTGRES_PASSWORD"] and env["POSTGRES_PASSWORD"] != "airflow"
    assert len(env["AIRFLOW_FERNET_KEY"]) == 44 and len(env["AIRFLOW_JWT_SECRET"]) == 64
    assert env["AIRFLOW_API_PORT"] == stack.ports["AIRFLOW_API_PORT"]  # the first run's environment won


def test_every_listener_of_the_stack_is_on_loopback_and_no_log_server_runs(stack: ComposeStack, docker_client):
    listening = set()
    for service, container in containers_of(stack, docker_client).items():
        if container.status != "running":
            continue
        top = container.top(ps_args="-eo pid")
        for (pid,) in top["Processes"]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # not root: postgres' own uid
                for conn in psutil.Process(int(pid)).net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN:
                        listening.add((service, conn.laddr.ip, conn.laddr.port))
    ports = {port for _, _, port in listening}
    # the check sees the stack's servers (Postgres too where this test runs as root)
    assert {int(stack.ports["AIRFLOW_API_PORT"]), int(stack.ports["AIRFLOW_SCHEDULER_HEALTH_PORT"])} <= ports, listening
    assert not ports & LOG_SERVER_PORTS, listening
    exposed = [entry for entry in listening if not ipaddress.ip_address(entry[1]).is_loopback]
    assert exposed == [], f"listening beyond this machine: {exposed}"


def test_only_the_scheduler_holds_the_docker_socket(stack: ComposeStack, docker_client):
    holders = {service for service, container in containers_of(stack, docker_client).items()
               if any(mount["Source"] == "/var/run/docker.sock" for mount in container.attrs["Mounts"])}
    assert holders == {"scheduler"}


def test_one_airflow_image_for_every_service_and_nothing_untagged_left(stack: ComposeStack, docker_client):
    containers = containers_of(stack, docker_client)
    airflow = {containers[name].image.id for name in ("airflow-init", "api-server", "scheduler", "dag-processor",
                                                      "triggerer")}
    assert len(airflow) == 1
    assert stack.env["MLBATCH_AIRFLOW_IMAGE"] in docker_client.images.get(airflow.pop()).tags
    leftovers = docker_client.images.list(filters={"dangling": True, "label": LABEL})
    assert leftovers == [], [image.id for image in leftovers]


def test_the_documented_build_contexts_stay_small():
    """`docker build .` and `docker compose build` send what .dockerignore leaves of the checkout
    (its .venv, artifacts and caches too, when present): a few MB, besides wheels/ (local wheels an
    operator puts there on purpose)."""
    from docker.utils.build import exclude_paths

    ignore = PROJECT / ".dockerignore"
    patterns = [line for line in (ignore.read_text().splitlines() if ignore.exists() else [])
                if line.strip() and not line.startswith("#")]
    sent = [PROJECT / name for name in exclude_paths(str(PROJECT), patterns)]
    size = sum(path.stat().st_size for path in sent if path.is_file() and not path.is_symlink()
               and path.parent != PROJECT / "wheels")
    assert size < 5 * 2**20, f"{size / 2**20:.1f} MiB: {sorted(sent, key=lambda p: -p.stat().st_size)[:5]}"
    assert not any(part in (".venv", ".env", "artifacts", "airflow_home") for path in sent
                   for part in path.relative_to(PROJECT).parts)


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
    assert {image for _, image in started.values()} == {images.DEFAULT_WORKER}
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
