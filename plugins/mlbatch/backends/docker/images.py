"""The exact image a command step runs on the docker backend, for its cache key: the engine's image ID.

A tag moved onto a rebuilt image gets a new ID, so the step's cached output is not reused for it.
"""
from __future__ import annotations

from typing import Any, Callable

from mlbatch.backends.docker import client as engine_client


def image_digest(image: str, warn: Callable[..., None], client: Any = None) -> str:
    """'image:<the engine's image ID>'; a ref the engine lacks keys by its name (the run then fails on it)."""
    from docker.errors import ImageNotFound

    if client is None:
        from contextlib import closing

        from mlbatch.settings import load_settings

        with closing(engine_client.connect(load_settings().docker.host, 1)) as connected:
            return image_digest(image, warn, connected)
    try:
        return f"image:{client.images.get(image).id}"
    except ImageNotFound:
        warn("image %s is not on the Docker host: its cache key names the ref, not a digest", image)
        return f"image-ref:{image}"

