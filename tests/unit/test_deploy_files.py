"""docker-compose.yaml, .env.example and Dockerfile.worker, checked statically (no Docker engine here)."""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?-][^}]*)?\}")  # ${VAR}, ${VAR:-x}, ${VAR:?msg}; $${VAR} is escaped


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())


def airflow_env(compose: dict) -> dict[str, str]:
    return compose["services"]["scheduler"]["environment"]


# -- which environment variables the code reads ------------------------------------------------

def mlbatch_names_in_code() -> set[str]:
    """MLBATCH_* names the code reads: every settings override, and the literal names in the source."""
    from mlbatch.settings import overrides

    names = {override.env for override in overrides()}
    for folder in ("plugins/mlbatch", "workers"):
        for path in (PROJECT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and re.fullmatch(r"MLBATCH_[A-Z0-9_]*[A-Z0-9]", node.value):
                    names.add(node.value)
    return names


def airflow_option_exists(name: str) -> bool:
    """AIRFLOW__{SECTION}__{KEY}: an option of Airflow's (or an installed provider's) configuration."""
    from airflow.configuration import conf

    match = re.fullmatch(r"AIRFLOW__([A-Z0-9_]+)__([A-Z0-9_]+)", name)
    if not match:
        return False
    section, key = (part.lower() for part in match.groups())
    return key in conf.configuration_description.get(section, {}).get("options", {})


def connection_ids_in_use() -> set[str]:
    """Airflow connections the project names: the AWS one of the settings, the Slack ones of the specs
    and of the spec `mlbatch new` writes."""
    from mlbatch.cli.scaffold import SPEC
    from mlbatch.settings import AwsSettings

    specs = [yaml.safe_load(p.read_text()) for p in (PROJECT / "dags" / "specs").glob("*.yaml")]
    specs.append(yaml.safe_load(SPEC.format(name="new_batch")))
    return {AwsSettings().conn_id} | {spec["alerts"]["slack"] for spec in specs if (spec.get("alerts") or {}).get("slack")}


def aws_sdk_names() -> set[str]:
    """The standard AWS_* variables botocore reads (configuration and credentials)."""
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES as variables
    from botocore.credentials import EnvProvider

    names = {EnvProvider.ACCESS_KEY, EnvProvider.SECRET_KEY, EnvProvider.EXPIRY_TIME, *EnvProvider.TOKENS}
    for _, env, *_ in variables.values():
        names.update([env] if isinstance(env, str) else env or [])
    return names


def is_read_by_the_code(name: str, mlbatch: set[str], connections: set[str]) -> bool:
    if name.startswith("MLBATCH_"):
        return name in mlbatch
    if name.startswith("AIRFLOW_CONN_"):
        return name in {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in connections}
    if name.startswith("AIRFLOW__"):
        return airflow_option_exists(name)
    if name.startswith("AWS_"):
        return name in aws_sdk_names()
    return name == "PYTHONPATH"  # the interpreter's own


def test_the_env_name_check_can_fail():
    mlbatch, connections = mlbatch_names_in_code(), connection_ids_in_use()
    assert {"MLBATCH_BATCH_QUEUE_GPU_SPOT", "MLBATCH_ARTIFACTS", "MLBATCH_BACKEND", "MLBATCH_SETTINGS"} <= mlbatch
    for name in ("MLBATCH_BATCH_QUEUE", "MLBATCH_ECS_SUBNET", "AIRFLOW__CORE__EXECUTORS", "AIRFLOW__NOPE__EXECUTOR",
                 "AIRFLOW_CONN_SLACK_OTHER", "AWS_REGION_NAME", "SLACK_WEBHOOK_URL"):
        assert not is_read_by_the_code(name, mlbatch, connections), name
    assert is_read_by_the_code("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", mlbatch, connections)
    assert is_read_by_the_code("AWS_DEFAULT_REGION", mlbatch, connections)


def test_every_env_name_of_the_compose_file_is_one_the_code_reads(compose):
    mlbatch, connections = mlbatch_names_in_code(), connection_ids_in_use()
    for service in ("airflow-init", *AIRFLOW_SERVICES):
        unknown = [name for name in compose["services"][service]["environment"]
                   if not is_read_by_the_code(name, mlbatch, connections)]
        assert unknown == [], f"{service}: nothing reads {unknown}"


def test_every_aws_setting_can_come_from_the_environment(compose):
    from mlbatch.settings import overrides

    env = airflow_env(compose)
    resources = {o.env for o in overrides() if o.names_aws_resource} - {"MLBATCH_ARTIFACTS_ROOT"}
    assert resources <= set(env), "aws mode: " + ", ".join(sorted(resources - set(env)))
    assert "MLBATCH_ARTIFACTS" in env  # it wins over [artifacts] root
    assert {"AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_SLACK_ML_ALERTS", "MLBATCH_BACKEND", "MLBATCH_SETTINGS"} <= set(env)


def test_no_secret_is_written_in_the_compose_file(compose):
    env = airflow_env(compose)
    for name in ("AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_SLACK_ML_ALERTS", "AIRFLOW__API_AUTH__JWT_SECRET",
                 "AIRFLOW__CORE__FERNET_KEY"):
        assert INTERPOLATION.fullmatch(env[name]), f"{name} must come from .env, not the file: {env[name]!r}"
    # no silent default secret: compose refuses to start without each
    assert "${AIRFLOW_JWT_SECRET:?" in env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert "${AIRFLOW_FERNET_KEY:?" in env["AIRFLOW__CORE__FERNET_KEY"]
    assert "${POSTGRES_PASSWORD:?" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "${POSTGRES_PASSWORD:?" in compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    for line in (PROJECT / ".gitignore").read_text().splitlines():
        if line.strip() == ".env":
            break
    else:
        pytest.fail(".env (the secrets) must be git-ignored")


def test_env_example_documents_exactly_the_variables_compose_interpolates():
    interpolated = set(INTERPOLATION.findall((PROJECT / "docker-compose.yaml").read_text()))
    documented = {line.split("=", 1)[0] for line in (PROJECT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#")}
    assert documented == interpolated


def test_compose_has_the_airflow_stack(compose):
    services = compose["services"]
    assert {"postgres", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    for name in AIRFLOW_SERVICES:
        service = services[name]
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert env["MLBATCH_SETTINGS"].startswith("/opt/airflow/config/")
        assert {"./dags:/opt/airflow/dags", "./plugins:/opt/airflow/plugins", "./config:/opt/airflow/config",
                "./workers:/opt/airflow/workers"} <= set(service["volumes"])
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert service["restart"] == "always"
        assert service["healthcheck"]["test"] and service["healthcheck"]["retries"] >= 1, name
    assert services["postgres"]["restart"] == "always" and services["postgres"]["healthcheck"]
    assert services["airflow-init"]["restart"] == "no"
    # the worker code is where the project root puts it: PYTHONPATH and cache keys both find workers/
    assert airflow_env(compose)["PYTHONPATH"] == "/opt/airflow/plugins:/opt/airflow"


def test_init_migrates_and_creates_the_pool_and_the_admin_user(compose):
    init = compose["services"]["airflow-init"]
    script = "\n".join(init["command"])
    assert script.index("airflow db migrate") < script.index("airflow pools set mlbatch_local")
    from mlbatch.run.factory import LOCAL_POOL

    assert f"pools set {LOCAL_POOL} " in script
    users = init["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert users.split(":")[0] == "admin" and "$$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    assert init["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/config/")


def test_compose_pins_the_airflow_version_of_requirements():
    pinned = next(line for line in (PROJECT / "requirements-airflow.txt").read_text().splitlines()
                  if line.startswith("apache-airflow=="))
    image = f"apache/airflow:{pinned.split('==')[1]}-python3.11"
    assert image in (PROJECT / "docker-compose.yaml").read_text()
    assert f"ARG AIRFLOW_IMAGE={image}" in (PROJECT / "deploy/compose/Dockerfile.airflow").read_text()


# -- the compose stack as compose itself resolves it (the pinned Compose v2 binary, no engine needed) --

def resolved(tmp_path: Path, **dotenv: str) -> subprocess.CompletedProcess:
    """`docker-compose config --format json` of the project's compose file with `dotenv` as its .env."""
    from mlbatch.cli.compose import compose_command

    (tmp_path / ".env").write_text("".join(f"{name}={value}\n" for name, value in dotenv.items()))
    return subprocess.run([*compose_command(), "--file", str(PROJECT / "docker-compose.yaml"),
                           "--project-directory", str(tmp_path), "config", "--format", "json"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


REQUIRED = {"AIRFLOW_JWT_SECRET": "0" * 64, "MLBATCH_ARTIFACTS_DIR": "/srv/mlbatch/artifacts",
            "POSTGRES_PASSWORD": "pw", "AIRFLOW_FERNET_KEY": "k" * 44}


@pytest.fixture
def stack(tmp_path) -> dict:
    done = resolved(tmp_path, **REQUIRED)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_compose_uses_the_host_network_only(stack):
    for name, service in stack["services"].items():
        assert service.get("network_mode") == "host", name  # never Docker's bridge network
        assert "ports" not in service and "networks" not in service, name
    assert stack["services"]["postgres"]["command"] == ["postgres", "-c", "listen_addresses=127.0.0.1"]


def test_local_mode_starts_each_step_as_a_container_through_the_host_socket(stack):
    holders = set()
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        service = stack["services"][name]
        env = service["environment"]
        assert env["MLBATCH_BACKEND"] == "docker", name
        assert env["MLBATCH_ARTIFACTS"] == "/srv/mlbatch/artifacts"
        binds = {volume["source"]: volume["target"] for volume in service["volumes"] if volume["type"] == "bind"}
        # the host's engine mounts the folder by the path the scheduler names: the same on both sides
        assert binds["/srv/mlbatch/artifacts"] == "/srv/mlbatch/artifacts"
        folders = {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/config", "/opt/airflow/logs"}
        assert folders <= set(binds.values()), name
        if "/var/run/docker.sock" in binds:
            holders.add(name)
            assert binds["/var/run/docker.sock"] == "/var/run/docker.sock"
        assert ("group_add" in service) == (name == "scheduler"), name
    # the socket is root on the host: only the service that starts the step containers holds it
    assert holders == {"scheduler"}
    assert stack["services"]["scheduler"]["group_add"] == ["0"]  # DOCKER_GID, empty: root's group


def test_everything_listens_on_loopback_unless_env_says_otherwise(stack, tmp_path):
    services = stack["services"]
    assert services["scheduler"]["environment"]["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert services["postgres"]["command"][-1] == "listen_addresses=127.0.0.1"
    assert services["scheduler"]["environment"]["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST"] == "127.0.0.1"
    # Airflow's log servers listen on every address with no setting to change it: they are off (the
    # task logs are files in the shared ./logs)
    assert services["scheduler"]["command"] == ["scheduler", "--skip-serve-logs"]
    assert services["triggerer"]["command"] == ["triggerer", "--skip-serve-logs"]
    done = resolved(tmp_path, **REQUIRED, AIRFLOW_API_HOST="0.0.0.0")
    assert json.loads(done.stdout)["services"]["api-server"]["environment"]["AIRFLOW__API__HOST"] == "0.0.0.0"


def test_the_admin_password_file_is_made_readable_by_its_owner_alone(compose):
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert "umask 077" in script and 'chmod 600 "$$passwords"' in script
    assert "cat \"$$passwords\"" not in script  # never printed into the log


def test_ports_come_from_env_and_every_service_agrees_on_them(tmp_path):
    done = resolved(tmp_path, **REQUIRED, AIRFLOW_API_PORT="18080", POSTGRES_PORT="15432",
                    AIRFLOW_SCHEDULER_HEALTH_PORT="18974", DOCKER_GID="998")
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    env = services["scheduler"]["environment"]
    assert env["AIRFLOW__API__PORT"] == "18080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert "@127.0.0.1:15432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert services["postgres"]["environment"]["PGPORT"] == "15432"
    assert "http://127.0.0.1:18080/api/v2/version" in services["api-server"]["healthcheck"]["test"]
    assert "http://127.0.0.1:18974/health" in services["scheduler"]["healthcheck"]["test"]
    assert services["scheduler"]["group_add"] == ["998"]


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_compose_refuses_to_start_without_a_secret_or_the_artifact_folder(tmp_path, name):
    done = resolved(tmp_path, **{key: value for key, value in REQUIRED.items() if key != name})
    assert done.returncode != 0 and f"set {name} in .env" in done.stderr


def test_one_airflow_image_is_built_once_for_every_service(stack):
    services = stack["services"]
    assert "build" in services["airflow-init"]
    assert not any("build" in services[name] for name in AIRFLOW_SERVICES)  # five builds of one image, before
    assert {services[name]["image"] for name in ("airflow-init", *AIRFLOW_SERVICES)} == {"mlbatch-airflow:3.3.2"}


def test_dockerignore_keeps_local_state_out_of_every_build_context():
    ignored = {line.strip() for line in (PROJECT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", ".env", "artifacts", "airflow_home", "logs", "config", "**/__pycache__", ".git"} <= ignored
    copied = {"workers", "wheels", "deploy", "requirements-worker.txt", "requirements-airflow.txt"}
    assert not ignored & copied  # what the Dockerfiles COPY stays in


def test_compose_images_take_their_bases_and_package_sources_as_build_arguments(stack, tmp_path):
    build = stack["services"]["airflow-init"]["build"]
    assert build["dockerfile"] == "deploy/compose/Dockerfile.airflow" and build["network"] == "host"
    dockerfile = (PROJECT / build["dockerfile"]).read_text()
    declared = dict(re.findall(r"^ARG (\w+)=(.*)$", dockerfile, re.MULTILINE))
    assert build["args"] == {name: declared[name] for name in build["args"]}  # the production defaults
    assert stack["services"]["postgres"]["image"] == "postgres:16"
    offline = resolved(tmp_path, **REQUIRED, AIRFLOW_IMAGE="mlbatch-compose-airflow-base:x", TORCH_INDEX_URL="",
                       FIND_LINKS="/tmp/wheels", POSTGRES_IMAGE="mlbatch-compose-postgres:x")
    services = json.loads(offline.stdout)["services"]
    assert services["airflow-init"]["build"]["args"] == {
        "AIRFLOW_IMAGE": "mlbatch-compose-airflow-base:x", "PIP_INDEX_URL": "https://pypi.org/simple",
        "TORCH_INDEX_URL": "", "FIND_LINKS": "/tmp/wheels"}
    assert services["postgres"]["image"] == "mlbatch-compose-postgres:x"


@pytest.mark.parametrize("dockerfile", ["deploy/compose/Dockerfile.airflow", "deploy/compose/offline/Dockerfile.airflow-base",
                                        "deploy/compose/offline/Dockerfile.postgres"])
def test_compose_dockerfiles_pass_hadolint(dockerfile):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    proc = subprocess.run([hadolint, str(PROJECT / dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- Dockerfile.worker --------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of Dockerfile.worker, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (PROJECT / "Dockerfile.worker").read_text().splitlines()
                                         if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines() if line.strip()]


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def global_args() -> dict[str, str]:
    args = {}
    for name, value in dockerfile_instructions():
        if name == "FROM":
            break
        if name == "ARG":
            key, _, default = value.partition("=")
            args[key] = default
    return args


def test_worker_image_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    proc = subprocess.run([hadolint, str(PROJECT / "Dockerfile.worker")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_worker_image_is_multi_stage_with_a_cpu_and_a_gpu_variant():
    assert global_args()["VARIANT"] == "cpu"
    froms = [stage[0][1] for stage in stages()]
    assert "AS build" in froms[0] and froms[-1] == "base-${VARIANT}"
    assert {"${CPU_IMAGE} AS base-cpu", "${CUDA_IMAGE} AS base-gpu"} <= set(froms)
    final = stages()[-1]
    copied = [args for name, args in final if name == "COPY"]
    assert any(args.startswith("--from=build") and "/opt/venv" in args for args in copied)
    assert not any("requirements" in args for args in copied)  # nothing is installed in the final stage


def test_gpu_variant_runs_on_the_cuda_runtime_of_its_torch_build():
    cuda_image = global_args()["CUDA_IMAGE"]
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-runtime-ubuntu[\d.]+", cuda_image)
    assert match, cuda_image
    build = stages()[0]
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl") in build  # the production default
    install = next(args for name, args in build if name == "RUN" and "$TORCH_INDEX_URL/$torch_index" in args)
    assert f"torch_index=cu{match[1]}{match[2]}" in install  # cu130 wheels on CUDA 13.0
    pins = dict(line.split("==") for line in (PROJECT / "requirements-worker.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0"  # the version whose CUDA build that is: change both together


def test_worker_image_builds_for_production_unless_build_arguments_say_otherwise():
    """The offline build (tests/containers/images.py) changes only build arguments; their defaults are production's."""
    assert global_args()["BUILD_IMAGE"].startswith("python:3.11") and global_args()["CPU_IMAGE"].startswith("debian:12")
    build = dict(args.partition("=")[::2] for name, args in stages()[0] if name == "ARG")
    assert build["PYTHON_SOURCE"] == "uv" and build["PIP_INDEX_URL"] == "https://pypi.org/simple"
    assert build["FIND_LINKS"] == ""  # no local wheels unless asked
    from tests.containers.images import build_args

    assert set(build_args("base")) <= set(global_args()) | set(build) | {"GIT_SHA"}  # every one is declared


def test_worker_image_runs_as_an_unprivileged_user_and_is_labelled_with_the_git_sha():
    final = stages()[-1]
    users = [args for name, args in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("ARG", "GIT_SHA=unknown") in final
    labels = " ".join(args for name, args in final if name == "LABEL")
    assert 'org.opencontainers.image.revision="${GIT_SHA}"' in labels


def test_worker_image_installs_only_pinned_worker_requirements():
    dockerfile = (PROJECT / "Dockerfile.worker").read_text()
    assert "-r /tmp/requirements-worker.txt" in dockerfile
    requirements = [line for line in (PROJECT / "requirements-worker.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line) for line in requirements)
    assert not any("airflow" in line for line in requirements)
    assert re.search(r"pip install uv==[\d.]+", dockerfile)
    # the one entrypoint every backend's command follows (workers.wire), spelled the same in the image
    from workers.wire import WORKER_ENTRYPOINT

    assert f"ENTRYPOINT {json.dumps(list(WORKER_ENTRYPOINT))}" in dockerfile
