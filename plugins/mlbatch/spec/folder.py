"""A spec's siblings: the other spec files of its folder, as one check (or one lint run) sees them.

Every parse of a loader looks at the specs next to its own: does another file claim the same
dag_id? which steps has the batch named in `schedule.after`? The dag-processor re-parses every
loader every 30 s, so with hundreds of specs in one folder this has to stay cheap: the folder
is listed once per check and each file read at most once. A loader's parse reads only the
files changed since an earlier parse (mlbatch.spec.folder_index); lint, which shares one
SpecFolder across all the specs of a folder, parses a file as YAML only when it can claim
the dag_id asked about, and each at most once per run.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from mlbatch.spec.bounded_yaml import load_bounded
from mlbatch.spec.fields import DAG_ID_PATTERN
from mlbatch.spec.folder_index import Claim, FolderIndex, Stamp

SPEC_SUFFIXES = (".yaml", ".yml")


def spec_files(directory: Path) -> list[Path]:
    """The spec files of a directory (*.yaml, *.yml), by name."""
    return [directory / name for name in _stamped_spec_names(directory)]


def effective_dag_id(data: Any, path: Path) -> str:
    """The dag_id a spec's YAML sets, else its file name."""
    return _dag_id(data, path.stem)


def dag_id_owner(claimants: list[Path], dag_id: str) -> Path:
    """Of files claiming one dag_id, the one that keeps it: the file named after it, else the first by name."""
    return min(claimants, key=lambda p: (p.stem != dag_id, p.name))


class SpecFolder:
    """The spec files of one folder: listed once, each read and parsed at most once.

    It is a snapshot for one check or one lint run (nothing in it notices later edits):
    the dag-processor parses each loader in a fresh process, so each parse sees the folder anew.
    With an index (mlbatch.spec.folder_index, what a loader's parse uses), files unchanged since
    an earlier parse are not read at all; without one, a file is parsed as YAML only when it
    can claim the dag_id asked about.
    """

    def __init__(self, directory: Path, index: FolderIndex | None = None) -> None:
        self.directory = directory
        self._index = index
        self._stamps: dict[str, Stamp] | None = None
        self._claims: dict[str, Claim | None] = {}
        self._raw: dict[str, bytes | None] = {}

    @classmethod
    def indexed(cls, directory: Path) -> SpecFolder:
        return cls(directory, FolderIndex.for_folder(directory))

    def names(self) -> list[str]:
        if self._stamps is None:
            try:
                self._stamps = _stamped_spec_names(self.directory)
            except OSError:
                self._stamps = {}
        return list(self._stamps)

    def claimants(self, path: Path, dag_id: str) -> list[Path]:
        """`path` and the spec files next to it whose effective dag_id is `dag_id`.

        Files that are not valid YAML claim nothing: they produce no DAG anyway.
        """
        spelled = dag_id.encode() if re.fullmatch(DAG_ID_PATTERN, dag_id) else None
        claimants = [path]
        for name in self.names():
            if name == path.name:
                continue
            stem = name.rpartition(".")[0]  # no Path per sibling: this loop runs for every spec of the folder
            if (self._index is None and stem != dag_id and name not in self._claims
                    and not _may_set_dag_id(self._read(name), spelled)):
                continue  # it keeps its own file name, or sets a dag_id that is not this one
            claim = self.claim(name)
            if claim is not None and claim.dag_id == dag_id:
                claimants.append(self.directory / name)
        return claimants

    def claim(self, name: str) -> Claim | None:
        """The dag_id and steps a spec file claims; None when it is unreadable or not a mapping."""
        if name not in self._claims:
            stamp = (self._stamps or {}).get(name)
            known, claim = self._index.lookup(name, stamp) if self._index and stamp else (False, None)
            if not known:
                claim = _claim(_parse(self._read(name)), name.rpartition(".")[0])
                if self._index and stamp:
                    self._index.remember(name, stamp, claim)
            self._claims[name] = claim
        return self._claims[name]

    def dag_ids(self) -> set[str]:
        """The dag_id of every spec in the folder (reads them all: only asked when a name was not found)."""
        return {claim.dag_id for name in self.names() if (claim := self.claim(name)) is not None}

    def save(self) -> None:
        """Remember what this check learnt for the next parse (with an index; otherwise nothing)."""
        if self._index is not None:
            self._index.save(set(self.names()))

    def _read(self, name: str) -> bytes | None:
        if name not in self._raw:
            try:
                with open(os.path.join(self.directory, name), "rb") as file:
                    self._raw[name] = file.read()
            except OSError:
                self._raw[name] = None
        return self._raw[name]


def _claim(data: dict[str, Any] | None, stem: str) -> Claim | None:
    if data is None:
        return None
    steps = data.get("steps")
    return Claim(_dag_id(data, stem), [str(step) for step in steps] if isinstance(steps, dict) else None)


def _dag_id(data: Any, stem: str) -> str:
    dag_id = data.get("dag_id") if isinstance(data, dict) else None
    return dag_id if isinstance(dag_id, str) else stem


def _stamped_spec_names(directory: Path) -> dict[str, Stamp]:
    """{name: stamp} of the spec files of a directory, by name: one scandir and a stat per file, no read."""
    stamps = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(SPEC_SUFFIXES) and entry.is_file():
                info = entry.stat()
                stamps[entry.name] = Stamp(info.st_size, info.st_mtime_ns, info.st_ino)
    return dict(sorted(stamps.items()))


def _may_set_dag_id(raw: bytes | None, spelled: bytes | None) -> bool:
    """Whether a spec's text can set `dag_id: <spelled>` (None: an invalid dag id, so any may).

    The key and a valid dag id (letters, digits and `_.-`) are written literally in any YAML
    scalar style, aliases and merge keys included; only a double-quoted escape (a backslash)
    could spell them otherwise, and then the file is parsed.
    """
    if raw is None:
        return False
    if b"\\" in raw:
        return True
    return b"dag_id" in raw and (spelled is None or spelled in raw)


def _parse(raw: bytes | None) -> dict[str, Any] | None:
    """The YAML mapping of a spec file's bytes; None when it is unreadable or not a mapping."""
    if raw is None:
        return None
    try:
        data, _ = load_bounded(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None
