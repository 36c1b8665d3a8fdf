"""A team's own image with nothing of mlbatch inside: python3 from the base and a short script (team_image/).

Built FROM the debootstrap base (never a debootstrap of its own, never the worker image), tagged by a hash
of what went into it, once per content: the image steps' tests use it. `version` changes one file of it,
which is how a test rebuilds the image with a change.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from mlbatch.cli.compose_images import digest, exclusive, image_exists
from tests.containers.images import ImageBuildError

CONTEXT = Path(__file__).with_name("team_image")
REPOSITORY = "mlbatch-team-test"


def _files(version: int) -> dict[str, bytes]:
    files = {path.name: path.read_bytes() for path in sorted(CONTEXT.iterdir()) if path.is_file()}
    files["VERSION"] = f"{version}\n".encode()
    return files


def ensure_team_image(client: Any, base: str, version: int = 1) -> str:
    """The tag of the team image on `base`, built unless an image of the same content exists."""
    files = _files(version)
    parts = [name.encode() + b"\0" + data for name, data in files.items()]
    tag = f"{REPOSITORY}:{digest(base.encode(), *parts)}"
    if image_exists(client, tag):
        return tag
    with exclusive():
        if not image_exists(client, tag):
            _build(client, tag, base, files)
    return tag


def _build(client: Any, tag: str, base: str, files: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    log: list[str] = []
    for record in client.api.build(fileobj=buffer, custom_context=True, tag=tag, buildargs={"BASE": base},
                                   network_mode="none", rm=True, forcerm=True, decode=True):
        if "error" in record:
            raise ImageBuildError(f"building {tag} failed: {record['error']}\n{''.join(log[-20:])}")
        log.append(record.get("stream", ""))
