"""What each spec file of a folder claims (its dag_id and steps), remembered between parses.

The dag-processor parses every loader in a fresh process, every 30 s, and each parse asks the
loader's siblings who else claims its dag_id (and, for `schedule.after`, which steps a batch
has). Reading hundreds of sibling files on every parse costs more than the rest of the parse
on a slow or overlay filesystem (bench `parse`); listing the folder with its file stats is
cheap. So the claims are kept in a small JSON index per folder, keyed by each file's size,
mtime and inode: a parse lists the folder and reads only the files that changed since.

Like git's index, an entry is kept only when its file's mtime is over a second older than the
moment the index is written: an edit within the same timestamp tick could otherwise leave
size and mtime unchanged and go unseen. The index is only a shortcut: unreadable, corrupt or
unwritable means every file is read, as without it. It lives under MLBATCH_SPEC_INDEX_DIR,
else a private folder of this user in the temp directory; MLBATCH_SPEC_INDEX_DIR=off turns it off.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

DIRECTORY_ENV = "MLBATCH_SPEC_INDEX_DIR"
VERSION = 1
SETTLED_NS = 1_000_000_000  # an entry is kept once its file has not changed for this long


class Stamp(NamedTuple):
    """What identifies one version of a file without reading it."""

    size: int
    mtime_ns: int
    inode: int


class Claim(NamedTuple):
    """What a spec file claims: its effective dag_id and its step names (None: not a mapping of steps)."""

    dag_id: str
    steps: list[str] | None


class FolderIndex:
    """The remembered claims of one folder's spec files; `lookup` what is still current, `save` the rest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list] = _load(path)
        self._fresh: dict[str, tuple[Stamp, Claim | None]] = {}

    @classmethod
    def for_folder(cls, directory: Path) -> FolderIndex | None:
        """The index of `directory`; None when the index is off or has no safe place."""
        path = index_file(directory)
        return cls(path) if path is not None else None

    def lookup(self, name: str, stamp: Stamp) -> tuple[bool, Claim | None]:
        """(True, claim) when the file is unchanged since it was indexed (claim None: it claims nothing)."""
        entry = self._entries.get(name)
        if entry is None or Stamp(*entry[0]) != stamp:
            return False, None
        return True, (Claim(entry[1], entry[2]) if entry[1] is not None else None)

    def remember(self, name: str, stamp: Stamp, claim: Claim | None) -> None:
        self._fresh[name] = (stamp, claim)

    def save(self, names: set[str]) -> None:
        """Write the index for the files `names` now in the folder, when anything changed; errors are ignored."""
        if not (self._fresh or set(self._entries) - names):
            return
        settled_before = time.time_ns() - SETTLED_NS
        entries = {name: entry for name, entry in self._entries.items() if name in names}
        for name, (stamp, claim) in self._fresh.items():
            if stamp.mtime_ns < settled_before:
                entries[name] = [list(stamp), *(claim if claim is not None else (None, None))]
            else:
                entries.pop(name, None)
        _write(self.path, {"version": VERSION, "entries": entries})


def index_file(directory: Path) -> Path | None:
    """Where the index of `directory` lives; None when the index is off or has no safe place."""
    raw = os.environ.get(DIRECTORY_ENV, "").strip()
    if raw.lower() == "off":
        return None
    home = Path(raw) if raw else Path(tempfile.gettempdir()) / f"mlbatch-spec-index-{os.getuid()}"
    if not _private_directory(home):
        return None
    key = hashlib.sha256(os.fsencode(os.path.abspath(directory))).hexdigest()[:24]
    return home / f"{key}.json"


def _private_directory(home: Path) -> bool:
    # Another user's or a shared writable folder could feed us false claims: use only our own.
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = home.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _load(path: Path) -> dict[str, list]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("entries"), dict):
        return {}
    return {name: entry for name, entry in data["entries"].items() if _well_formed(entry)}


def _well_formed(entry: object) -> bool:
    return (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], list) and len(entry[0]) == 3
            and all(isinstance(n, int) for n in entry[0]) and (entry[1] is None or isinstance(entry[1], str))
            and (entry[2] is None or isinstance(entry[2], list)))


def _write(path: Path, data: dict) -> None:
    # A whole new file moved into place: a concurrent parse reads the old index or the new one.
    # Not workers.artifacts.write_bytes: it imports fsspec, and this runs in every DAG parse.
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(data, file, separators=(",", ":"))
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
