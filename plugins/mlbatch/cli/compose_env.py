"""The compose stack's .env: written once, from .env.example, with generated secrets.

`mlbatch compose up` writes it the first time (mode 0600: it holds the database password, the
Fernet key and the JWT secret) and never rewrites it: later runs read it. Every value comes from
.env.example, then what this machine says (the user's uid, the Docker socket's group, the artifact
folder, the images `make images` made), then the generated secrets; a variable set in the
environment of the first run wins over all of them (`AIRFLOW_API_PORT=18080 mlbatch compose up`).
"""
from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path
from typing import Mapping

ENV_FILE = ".env"
EXAMPLE = ".env.example"
IMAGES_ENV = Path(".mlbatch/images.env")  # what `make images` made (tests/containers/images.py writes it)
DOCKER_SOCKET = Path("/var/run/docker.sock")
# what compose refuses to start without (docker-compose.yaml says `${NAME:?...}` for each)
REQUIRED = ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "MLBATCH_ARTIFACTS_DIR")
# the names .env gives the offline stand-ins (compose_images moves them onto the newest build)
OFFLINE_AIRFLOW_BASE = "mlbatch-airflow-base:3.3.2"
OFFLINE_POSTGRES = "mlbatch-postgres:15"
LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def read(path: Path) -> dict[str, str]:
    """NAME=VALUE lines of a dotenv file (comments and blank lines skipped; one pair of quotes stripped)."""
    values = {}
    for line in path.read_text().splitlines():
        if match := LINE.match(line.strip()):
            name, value = match.groups()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[name] = value
    return values


def secrets_values() -> dict[str, str]:
    return {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        # a Fernet key is 32 random bytes in URL-safe base64
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
    }


def machine_values(root: Path, made: Mapping[str, str]) -> dict[str, str]:
    """What this machine and `make images` say: owner, socket group, artifact folder, image sources."""
    values = {
        "AIRFLOW_UID": str(os.getuid()),
        "DOCKER_GID": str(DOCKER_SOCKET.stat().st_gid) if DOCKER_SOCKET.exists() else "",
        "MLBATCH_ARTIFACTS_DIR": str((root / "artifacts").resolve()),
    }
    if made.get("MLBATCH_BASE_IMAGE"):  # no registry: the stand-ins on the base `make images` made
        values.update(AIRFLOW_IMAGE=OFFLINE_AIRFLOW_BASE, POSTGRES_IMAGE=OFFLINE_POSTGRES,
                      TORCH_INDEX_URL="", FIND_LINKS="/tmp/wheels")
    return values


def images_made(root: Path) -> dict[str, str]:
    """The tags `make images` recorded (MLBATCH_BASE_IMAGE, MLBATCH_WORKER_IMAGE, MLBATCH_WHEELS); {} if none."""
    path = root / IMAGES_ENV
    return read(path) if path.is_file() else {}


def render(example: str, values: Mapping[str, str]) -> str:
    """.env.example with each NAME=... line set to `values[NAME]` (comments kept: they document .env)."""
    lines = []
    for line in example.splitlines():
        match = LINE.match(line)
        if match and match[1] in values:
            line = f"{match[1]}={values[match[1]]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_once(root: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Write ROOT/.env unless it exists (0600, never rewritten). True if it was written now."""
    path = root / ENV_FILE
    if path.exists():
        return False
    environ = os.environ if environ is None else environ
    example = (root / EXAMPLE).read_text()
    names = {match[1] for line in example.splitlines() if (match := LINE.match(line))}
    values = {**machine_values(root, images_made(root)), **secrets_values()}
    # what `mlbatch` itself set for the project (its artifact folder) is no choice of the user's
    from mlbatch.cli.project import project_settings

    own = project_settings(root)
    values.update({name: environ[name] for name in names if name in environ and environ[name] != own.get(name)})
    Path(values["MLBATCH_ARTIFACTS_DIR"]).mkdir(parents=True, exist_ok=True)
    # O_EXCL and the mode at creation: the secrets are never readable by others, not even for a moment
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render(example, values))
    return True


def missing(values: Mapping[str, str]) -> list[str]:
    return [name for name in REQUIRED if not values.get(name)]
