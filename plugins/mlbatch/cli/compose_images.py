"""The compose stack's images, each built once and tagged: `mlbatch compose up` builds what is missing.

- the stack's Airflow image, deploy/compose/Dockerfile.airflow: ONE image every Airflow service runs;
- with no registry (a base image from `make images`): the stand-ins of deploy/compose/offline/
  for apache/airflow and postgres, each FROM that base.

Each is tagged by a hash of its Dockerfile, its build arguments and every file of its build
context (`REPOSITORY:HASH`), so a second run builds nothing and a change rebuilds only what
changed; the name .env gives it (`mlbatch-airflow:3.3.2`, `mlbatch-postgres:15`) is then moved onto
it. Only the newest KEEP content tags of each are kept; older ones are removed, so nothing
untagged is left behind.

Built with the Docker SDK, which speaks to the engine's classic builder: no buildx plugin needed
(and no "configured to build using Bake" warning), and the build context is exactly the files
listed here, a few MB without the local wheels.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

OFFLINE = "deploy/compose/offline"
AIRFLOW_DOCKERFILE = "deploy/compose/Dockerfile.airflow"
LABEL = "mlbatch.image"  # set on every image built here: what a check for untagged leftovers looks for
KEEP = 3  # content tags kept per repository
# one build at a time on this machine (shared with tests/containers/images.py)
LOCK = Path(tempfile.gettempdir()) / "mlbatch-images.lock"

Log = Callable[[str], None]


class ComposeImageError(RuntimeError):
    """An image of the stack could not be built; the message ends with the build log's tail."""


@dataclass(frozen=True)
class Build:
    """One image: its Dockerfile, build arguments and build context (context path -> file)."""

    repository: str
    dockerfile: str
    files: dict[str, Path]
    args: dict[str, str] = field(default_factory=dict)

    def tag(self) -> str:
        parts = [self.dockerfile.encode(), json.dumps(self.args, sort_keys=True).encode()]
        for name, path in sorted(self.files.items()):
            # wheels are large and immutable once named: name and size identify them
            content = str(path.stat().st_size).encode() if name.startswith("wheels/") else path.read_bytes()
            parts += [name.encode(), content]
        return f"{self.repository}:{digest(*parts)}"

    def context(self) -> io.BytesIO:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("wheels")  # COPY wheels/ needs the folder even when it holds nothing
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
            for name, path in self.files.items():
                tar.add(str(path), arcname=name, recursive=False)
        buffer.seek(0)
        return buffer


def digest(*parts: bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(len(part).to_bytes(8, "big"))
        sha.update(part)
    return sha.hexdigest()[:12]


@contextmanager
def exclusive() -> Iterator[None]:
    """One build at a time on this machine: builds started side by side share the images."""
    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def image_exists(client: Any, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure(client: Any, build: Build, log: Log) -> str:
    """The image's content tag, built (host network, classic builder) unless it exists already."""
    tag = build.tag()
    if image_exists(client, tag):
        return tag
    with exclusive():
        if not image_exists(client, tag):
            log(f"building {tag} from {build.dockerfile}")
            _build(client, build, tag, log)
    return tag


def _build(client: Any, build: Build, tag: str, log: Log) -> None:
    lines: list[str] = []
    stream = client.api.build(fileobj=build.context(), custom_context=True, dockerfile=build.dockerfile, tag=tag,
                              buildargs=build.args, network_mode="host", rm=True, forcerm=True, decode=True,
                              labels={LABEL: build.repository})
    for record in stream:
        if "error" in record:
            raise ComposeImageError(f"building {tag} from {build.dockerfile} failed: {record['error']}\n"
                                    + "".join(lines[-40:]))
        if text := record.get("stream", ""):
            lines.append(text)
            log(text.rstrip("\n"))


def name_it(client: Any, content_tag: str, name: str) -> None:
    """Point `name` (the tag .env uses) at the content-tagged image."""
    repository, _, tag = name.rpartition(":")
    client.images.get(content_tag).tag(repository or name, tag or "latest")


def prune(client: Any, repository: str, keep: int = KEEP, log: Log = lambda line: None, prefix: str = "") -> list[str]:
    """Remove all but the `keep` newest content tags `REPOSITORY:PREFIX...` (an image a container uses stays)."""
    import docker

    tagged = [(image.attrs["Created"], tag) for image in client.images.list(name=repository)
              for tag in image.tags if tag.startswith(f"{repository}:{prefix}")]
    removed = []
    for _, tag in sorted(tagged, reverse=True)[keep:]:
        try:
            client.images.remove(tag, noprune=False)
        except docker.errors.APIError as error:  # in use by a container: keep it
            log(f"kept {tag}: {error.explanation}")
            continue
        removed.append(tag)
    return removed


def local_wheels(folders: list[Path]) -> dict[str, Path]:
    """wheels/NAME -> file, for the wheels of `folders` (torch's CPU wheel where no index serves it)."""
    return {f"wheels/{wheel.name}": wheel for folder in folders if folder.is_dir()
            for wheel in sorted(folder.glob("*.whl"))}


def airflow_build(root: Path, airflow_image: str, wheels: dict[str, Path], sources: dict[str, str]) -> Build:
    """The stack's Airflow image FROM `airflow_image` (the official one or the offline stand-in)."""
    files = {AIRFLOW_DOCKERFILE: root / AIRFLOW_DOCKERFILE,
             **{name: root / name for name in ("requirements-airflow.txt", "requirements-worker.txt")}, **wheels}
    return Build("mlbatch-compose-airflow", AIRFLOW_DOCKERFILE, files, {"AIRFLOW_IMAGE": airflow_image, **sources})


def stand_in_builds(root: Path, base: str) -> dict[str, Build]:
    """The offline stand-ins of apache/airflow and postgres, FROM `base` (a Debian bookworm image)."""
    def offline(repository: str, dockerfile: str, script: str) -> Build:
        files = {f"{OFFLINE}/{name}": root / OFFLINE / name for name in (dockerfile, script)}
        return Build(repository, f"{OFFLINE}/{dockerfile}", files, {"BASE_IMAGE": base})

    return {"airflow": offline("mlbatch-compose-airflow-base", "Dockerfile.airflow-base", "airflow-entrypoint.sh"),
            "postgres": offline("mlbatch-compose-postgres", "Dockerfile.postgres", "postgres-entrypoint.sh")}


# build arguments of Dockerfile.airflow with no torch index: torch's CPU wheel from wheels/
OFFLINE_SOURCES = {"TORCH_INDEX_URL": "", "FIND_LINKS": "/tmp/wheels"}
