"""The compose stack's images built from the offline base (no registry): what `docker compose build`
would make with AIRFLOW_IMAGE / POSTGRES_IMAGE pointed at the stand-ins of deploy/compose/offline/.

- the Airflow stand-in (deploy/compose/offline/Dockerfile.airflow-base) and the Postgres stand-in
  (deploy/compose/offline/Dockerfile.postgres), each FROM the debootstrap base;
- the stack's Airflow image from the project's own deploy/compose/Dockerfile.airflow, FROM the
  Airflow stand-in, torch's CPU wheel from wheels/ of the build context (the images' builder's
  local wheels) instead of PyTorch's index.

Each is tagged by a hash of its base and of every file of its build context, so a second run reuses
it. Built with the Docker SDK, as tests/containers/images.py builds the worker image (the classic
builder: the engine here has no buildx, which `docker compose build` would need).
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tests.containers import images

PROJECT = images.PROJECT
OFFLINE = "deploy/compose/offline"


@dataclass(frozen=True)
class ComposeImages:
    airflow: str  # the stack's Airflow image (deploy/compose/Dockerfile.airflow on the stand-in)
    postgres: str  # the Postgres stand-in


def _files(*names: str) -> dict[str, Path]:
    return {name: PROJECT / name for name in names}


def _context(files: dict[str, Path]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("wheels")  # COPY wheels/ needs the folder even when it holds nothing
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for name, path in files.items():
            tar.add(str(path), arcname=name, recursive=False)
    buffer.seek(0)
    return buffer


def _tag(repository: str, dockerfile: str, files: dict[str, Path], args: dict[str, str]) -> str:
    parts = [dockerfile.encode(), json.dumps(args, sort_keys=True).encode()]
    for name, path in sorted(files.items()):
        # wheels are large and immutable once named: name and size identify them
        content = str(path.stat().st_size).encode() if name.startswith("wheels/") else path.read_bytes()
        parts += [name.encode(), content]
    return f"{repository}:{images._digest(*parts)}"


def ensure(client: Any, repository: str, dockerfile: str, files: dict[str, Path], args: dict[str, str],
           log: Callable[[str], None]) -> str:
    """The image's content tag, built (host network, build arguments `args`) unless it exists already."""
    files = {dockerfile: PROJECT / dockerfile, **files}
    tag = _tag(repository, dockerfile, files, args)
    with images._exclusive():
        if images.image_exists(client, tag):
            return tag
        lines: list[str] = []
        stream = client.api.build(fileobj=_context(files), custom_context=True, dockerfile=dockerfile, tag=tag,
                                  buildargs=args, network_mode="host", rm=True, forcerm=True, decode=True)
        for record in stream:
            if "error" in record:
                tail = "".join(lines[-40:])
                raise images.ImageBuildError(f"building {tag} from {dockerfile} failed: {record['error']}\n{tail}")
            if text := record.get("stream", ""):
                lines.append(text)
                log(text.rstrip("\n"))
    return tag


def ensure_compose_images(client: Any, base: str, log: Callable[[str], None] = lambda line: None) -> ComposeImages:
    """The stack's Airflow and Postgres images on `base`, each built only if missing."""
    postgres = ensure(client, "mlbatch-compose-postgres", f"{OFFLINE}/Dockerfile.postgres",
                      _files(f"{OFFLINE}/postgres-entrypoint.sh"), {"BASE_IMAGE": base}, log)
    airflow_base = ensure(client, "mlbatch-compose-airflow-base", f"{OFFLINE}/Dockerfile.airflow-base",
                          _files(f"{OFFLINE}/airflow-entrypoint.sh"), {"BASE_IMAGE": base}, log)
    wheels = {f"wheels/{wheel.name}": wheel for wheel in images.local_wheels()}
    airflow = ensure(client, "mlbatch-compose-airflow", "deploy/compose/Dockerfile.airflow",
                     {**_files("requirements-airflow.txt", "requirements-worker.txt"), **wheels},
                     {"AIRFLOW_IMAGE": airflow_base, "TORCH_INDEX_URL": "", "FIND_LINKS": "/tmp/wheels"}, log)
    return ComposeImages(airflow=airflow, postgres=postgres)


if __name__ == "__main__":  # build them by hand: python -m tests.integration.compose_images
    import sys

    engine = images.connect()
    if engine is None:
        sys.exit(f"no Docker engine answers: {images.ENABLE_HINT}")
    built = ensure_compose_images(engine, images.ensure_base(engine, print), print)
    print(f"airflow:  {built.airflow}\npostgres: {built.postgres}")
