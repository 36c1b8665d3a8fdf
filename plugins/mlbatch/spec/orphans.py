"""Specs and their loaders must come in pairs: a spec without a loader is a batch Airflow never
shows, and a loader whose spec is gone is an import error. Both are lint errors with the fix.

A loader is a `dags/*.py` that calls `build_dag(__file__, "specs/NAME.yaml")`. Loaders are read
with `ast`, never imported: lint must not run DAG code, and it stays fast.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mlbatch.spec.problems import Problem

LOADER_CALL = "build_dag"
SPECS_FOLDER = "specs"  # loaders name "specs/NAME.yaml": the dags folder is the specs folder's parent


@dataclass(frozen=True)
class Loader:
    path: Path
    spec_relpath: str | None  # None: the spec is not a string literal, so lint cannot tell which it is

    @property
    def spec_path(self) -> Path | None:
        if self.spec_relpath is None:
            return None
        return Path(os.path.normpath(self.path.parent / self.spec_relpath))


def loaders_in(dags_dir: Path) -> list[Loader]:
    """Every file under dags_dir that calls build_dag, with the spec it names."""
    found = []
    for path in sorted(dags_dir.rglob("*.py")):
        if any(part.startswith((".", "__pycache__")) for part in path.relative_to(dags_dir).parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if LOADER_CALL not in text:  # cheap filter: most files of a dags folder are no loaders
            continue
        try:
            tree = ast.parse(text, filename=str(path))
        except SyntaxError:
            continue  # Airflow reports it as an import error of that file; it names no spec we can check
        found += [Loader(path, relpath) for relpath in _build_dag_targets(tree)]
    return found


def _build_dag_targets(tree: ast.AST) -> list[str | None]:
    targets: list[str | None] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name != LOADER_CALL:
            continue
        arg = node.args[1] if len(node.args) > 1 else next(
            (kw.value for kw in node.keywords if kw.arg == "spec_relpath"), None)
        targets.append(arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None)
    return targets


def orphan_problems(spec_files: Iterable[Path]) -> list[Problem]:
    """Linted specs that no loader builds, and loaders (beside their specs folders) whose spec is gone."""
    specs = [Path(p) for p in spec_files]
    problems: list[Problem] = []
    for dags_dir in sorted({p.parent.parent for p in specs if p.parent.name == SPECS_FOLDER}):
        loaders = loaders_in(dags_dir)
        loaded = {loader.spec_path.resolve() for loader in loaders if loader.spec_path is not None}
        for loader in loaders:
            if loader.spec_path is None:
                problems.append(Problem(str(loader.path), None, None,
                                        f"calls {LOADER_CALL} with a spec path that is not a plain string: "
                                        "lint cannot tell which spec it loads",
                                        f'write it as {LOADER_CALL}(__file__, "specs/NAME.yaml")', severity="warning"))
            elif not loader.spec_path.is_file():
                problems.append(missing_spec_problem(loader.path, loader.spec_relpath or ""))
        for spec in specs:
            if spec.parent.parent == dags_dir and spec.resolve() not in loaded:
                problems.append(missing_loader_problem(spec))
    return problems


def missing_loader_problem(spec: Path) -> Problem:
    return Problem(str(spec), None, None,
                   f"no loader in {spec.parent.parent} builds this spec, so Airflow never shows this batch",
                   f"mlbatch new --loader-only {spec.stem} (writes {spec.parent.parent / (spec.stem + '.py')})")


def missing_spec_problem(loader: Path, spec_relpath: str) -> Problem:
    spec = Path(os.path.normpath(loader.parent / spec_relpath))
    return Problem(str(loader), None, None, f"loads {spec_relpath}, but {spec} does not exist",
                   f"restore {spec} (e.g. from git), or delete {loader} if the batch is retired")


class MissingSpecError(FileNotFoundError):
    """A loader's spec file is gone: the import error names the loader, the spec and the fix."""

    def __init__(self, loader: Path, spec_relpath: str) -> None:
        self.problem = missing_spec_problem(loader, spec_relpath)
        super().__init__(str(self.problem))

    def __str__(self) -> str:
        return str(self.problem)
