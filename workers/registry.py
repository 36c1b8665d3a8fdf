"""Every installed worker, by name: what the distributions declare in the entry-point group
`mlbatch.workers` (the project's own catalogue, workers/catalogue.py, declares itself there too).

An entry is `NAME = "module:OBJECT"`, OBJECT a WorkerInfo named NAME, in a module that imports no
heavy library (its params model is imported on first use, its function only when a shard runs).
Lookups are lazy: a name that the project declares costs no scan of the installed distributions
(a shard of check.noop starts with nothing but its own modules), another name costs one scan,
and an entry is imported only when its worker is asked for. A package whose entry fails to import
fails only the lookups of its own workers (WorkerLoadError, a clear message), never the others.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Iterator

from workers import catalogue
from workers.info import WorkerInfo, resolve

__all__ = ["GROUP", "WORKERS", "WorkerInfo", "WorkerLoadError", "get_worker"]

GROUP = "mlbatch.workers"
SOURCE_FOLDER = "mlbatch (source folder)"  # the project's catalogue where the project is not installed


class WorkerLoadError(KeyError):
    """A declared worker that cannot be used: its entry fails to import, or two packages declare it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message, self.fix = message, fix

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Declaration:
    """One entry of the group: who declares which name, pointing at what."""

    name: str
    value: str  # "module:OBJECT"
    distribution: str

    def load(self) -> WorkerInfo:
        try:
            info = resolve(self.value)
        except Exception as exc:  # whatever a broken package raises, it must not take the others down
            raise WorkerLoadError(f"worker {self.name!r} cannot be loaded: {self._entry} raised "
                                  f"{type(exc).__name__}: {exc}", self._fix) from exc
        if not isinstance(info, WorkerInfo) or info.name != self.name:
            got = f"WorkerInfo {info.name!r}" if isinstance(info, WorkerInfo) else type(info).__name__
            raise WorkerLoadError(f"worker {self.name!r} cannot be loaded: {self._entry} points at {got}, "
                                  f"not a WorkerInfo named {self.name!r}", self._fix)
        return info

    @property
    def _entry(self) -> str:
        return f"entry point '{self.name} = {self.value}' of distribution {self.distribution!r}"

    @property
    def _fix(self) -> str:
        return (f"fix {self.distribution!r} and reinstall it (pip install -e <its folder>), "
                f"or uninstall it (pip uninstall {self.distribution})")


def declarations() -> dict[str, list[Declaration]]:
    """Every name declared in the group, by any installed distribution (one scan of their metadata)."""
    from importlib.metadata import entry_points  # here: a built-in worker's shard never needs it

    found: dict[str, list[Declaration]] = {}
    for entry in entry_points(group=GROUP):
        owner = entry.dist.name if entry.dist is not None else "?"
        found.setdefault(entry.name, []).append(Declaration(entry.name, entry.value, owner))
    for name, value in catalogue.ENTRY_POINTS.items():
        if not any(d.value == value for d in found.get(name, [])):  # not installed: read from the source folder
            found.setdefault(name, []).append(Declaration(name, value, SOURCE_FOLDER))
    return found


class Registry(MutableMapping):
    """name -> WorkerInfo over every installed worker, loaded on first use (assignable, for tests)."""

    def __init__(self) -> None:
        self._loaded: dict[str, WorkerInfo] = {}
        self._declared: dict[str, list[Declaration]] | None = None

    def declared(self) -> dict[str, list[Declaration]]:
        if self._declared is None:
            self._declared = declarations()
        return self._declared

    def refresh(self) -> None:
        """Forget what was read: after a package was installed or removed in this process."""
        import importlib

        importlib.invalidate_caches()
        self._loaded.clear()
        self._declared = None

    def __getitem__(self, name: str) -> WorkerInfo:
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def _load(self, name: str) -> WorkerInfo:
        if name in catalogue.ENTRY_POINTS:  # the project's own: no scan of the installed distributions
            return resolve(catalogue.ENTRY_POINTS[name])
        found = self.declared().get(name)
        if not found:
            raise KeyError(name)
        if len(found) > 1:
            raise _declared_twice(name, found)
        return found[0].load()

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in catalogue.ENTRY_POINTS or name in self.declared()

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._loaded, *catalogue.ENTRY_POINTS, *self.declared()]))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, name: str, info: WorkerInfo) -> None:
        self._loaded[name] = info

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def problems(self) -> dict[str, WorkerLoadError]:
        """Every declared worker that cannot be used, and why (`python -m workers list` shows them)."""
        broken: dict[str, WorkerLoadError] = {}
        for name, found in self.declared().items():
            try:
                if len(found) > 1:
                    raise _declared_twice(name, found)
                self[name]
            except WorkerLoadError as error:
                broken[name] = error
        return broken


def _declared_twice(name: str, found: list[Declaration]) -> WorkerLoadError:
    owners = " and ".join(f"{d.distribution!r} ({d.value})" for d in found)
    return WorkerLoadError(f"worker {name!r} is declared by {owners}",
                           "uninstall one of them, or rename the worker in one of the packages")


WORKERS = Registry()


def get_worker(name: str) -> WorkerInfo:
    try:
        return WORKERS[name]
    except WorkerLoadError:
        raise
    except KeyError:
        raise KeyError(f"unknown worker {name!r}; known: {', '.join(sorted(WORKERS))}") from None
