"""The project's compose stack brought up for a test the documented way: `make images` (its last part,
images.publish, on the fixtures' images) then `mlbatch compose up`, in a fresh clone of this checkout
(a folder of links to its files, with dags/ of its own) so the test has its own .env, project name
(the folder's name) and free ports on 127.0.0.1.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.airflow_stack import http

PROJECT = Path(__file__).resolve().parents[2]
MLBATCH = Path(sys.executable).with_name("mlbatch")
# what a clone holds that the stack and its builds read (dags/ is the test's own)
CLONED = ("docker-compose.yaml", ".env.example", ".dockerignore", "deploy", "plugins", "workers", "wheels",
          "requirements-airflow.txt", "requirements-worker.txt", "Dockerfile.worker")
# .env names of the ports the stack takes on the host's network (the first run's environment sets .env)
PORTS = ("AIRFLOW_API_PORT", "POSTGRES_PORT", "AIRFLOW_SCHEDULER_HEALTH_PORT")


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports of 127.0.0.1 (all held open together, so no two are the same)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def clone(directory: Path) -> None:
    """A checkout as `git clone` leaves it, for the stack: the project's files linked, dags/specs empty."""
    for name in CLONED:
        (directory / name).symlink_to(PROJECT / name)
    (directory / "dags" / "specs").mkdir(parents=True)


@dataclass
class ComposeStack:
    directory: Path  # the clone: .env, config/, logs/, dags/, artifacts/
    ports: dict[str, str]
    token: str = ""
    up_output: str = ""  # what `mlbatch compose up` printed

    @property
    def project(self) -> str:  # compose's default: the folder's name
        return self.directory.name

    @property
    def env(self) -> dict[str, str]:
        from mlbatch.cli.compose_env import read

        return read(self.directory / ".env")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['AIRFLOW_API_PORT']}"

    @property
    def artifacts(self) -> Path:
        return Path(self.env["MLBATCH_ARTIFACTS_DIR"])

    def mlbatch(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """`mlbatch ARGS` in the clone, with only the ports set in its environment (as a user would)."""
        env = {name: os.environ[name] for name in ("PATH", "HOME", "DOCKER_HOST") if name in os.environ}
        return subprocess.run([str(MLBATCH), *args], cwd=self.directory, env={**env, **self.ports},
                              capture_output=True, text=True, timeout=timeout)

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.mlbatch("compose", *args, timeout=timeout)

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


def prepare(directory: Path) -> ComposeStack:
    clone(directory)
    return ComposeStack(directory, dict(zip(PORTS, map(str, free_ports(len(PORTS))))))
