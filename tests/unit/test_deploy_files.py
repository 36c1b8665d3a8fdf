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
    assert "${AIRFLOW_JWT_SECRET:?" in env["AIRFLOW__API_AUTH__JWT_SECRET"]  # no silent default secret
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
    assert services["api-server"]["ports"] == ["8080:8080"]
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
    compose = (PROJECT / "docker-compose.yaml").read_text()
    pinned = next(line for line in (PROJECT / "requirements-airflow.txt").read_text().splitlines()
                  if line.startswith("apache-airflow=="))
    assert f"apache/airflow:{pinned.split('==')[1]}" in compose


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
    install = next(args for name, args in stages()[0] if name == "RUN" and "download.pytorch.org" in args)
    assert f"torch_index=cu{match[1]}{match[2]}" in install  # cu130 wheels on CUDA 13.0
    pins = dict(line.split("==") for line in (PROJECT / "requirements-worker.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0"  # the version whose CUDA build that is: change both together


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
