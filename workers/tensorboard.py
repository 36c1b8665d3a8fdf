"""Learning curves as TensorBoard event files under a step's output (any fsspec URI).

tensorboardX writes the event files (the `tensorboard` package is only needed to view them).
On a local output they are written in place, so a running `tensorboard --logdir` sees each
epoch as it ends; on an object store they are written to a local folder, then uploaded.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from workers import artifacts


class Curves:
    """Scalars per step (epoch), e.g. add({"loss/train": 0.4, "loss/valid": 0.5}, epoch)."""

    def __init__(self, writer):
        self._writer = writer

    def add(self, scalars: dict[str, float | None], step: int) -> None:
        for tag, value in scalars.items():
            if value is not None:
                self._writer.add_scalar(tag, value, step)
        self._writer.flush()


@contextlib.contextmanager
def curves(uri: str) -> Iterator[Curves]:
    """A TensorBoard log folder at `uri`; every file is in place when the block ends."""
    from tensorboardX import SummaryWriter

    local = artifacts.local_path(uri)
    with contextlib.ExitStack() as stack:
        folder = local or stack.enter_context(tempfile.TemporaryDirectory(prefix="mlbatch-tb-"))
        os.makedirs(folder, exist_ok=True)
        writer = SummaryWriter(logdir=folder, flush_secs=5)
        try:
            yield Curves(writer)
        finally:
            writer.close()
        if local is None:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file():
                    artifacts.write_bytes(artifacts.join(uri, path.relative_to(folder).as_posix()), path.read_bytes())
