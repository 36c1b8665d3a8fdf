"""Read a spec file into a BatchSpec, or say everything that is wrong with it. Imports no Airflow.

Runs at DAG parse time for every spec; what it asks of the sibling specs (duplicate dag ids,
`schedule.after`) goes through one SpecFolder (mlbatch.spec.folder), which keeps that cheap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from mlbatch.spec.bounded_yaml import AliasBombError, load_bounded
from mlbatch.spec.folder import SpecFolder, dag_id_owner, effective_dag_id
from mlbatch.spec.models import DAG_ID_CHARS, DAG_ID_PATTERN, BatchSpec, availability_problems
from mlbatch.spec.problems import Problem, SpecError, line_of, problem_at, problems_from_validation_error


@dataclass
class SpecCheck:
    """The outcome of reading one spec: the spec when it is usable, every problem, the YAML tree for lines."""

    path: Path
    spec: BatchSpec | None
    problems: list[Problem] = field(default_factory=list)
    root: yaml.Node | None = None

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]


def load_spec(path: str | Path) -> BatchSpec:
    """The validated spec (dag_id always set), or SpecError listing every problem."""
    check = check_spec(Path(path))
    if check.errors or check.spec is None:
        raise SpecError(check.errors)
    return check.spec


def check_spec(path: Path, folder: SpecFolder | None = None) -> SpecCheck:
    """Everything wrong with one spec. Its siblings are seen through `folder` (lint shares one across
    the specs of a folder), else through the folder's index, which this check then brings up to date."""
    if folder is not None:
        return _check(path, folder)
    folder = SpecFolder.indexed(path.parent)
    try:
        return _check(path, folder)
    finally:
        folder.save()


def _check(path: Path, folder: SpecFolder) -> SpecCheck:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return SpecCheck(path, None, [Problem(file, None, None, f"cannot read the spec: {reason}")])
    try:
        data, root = load_bounded(text)
    except yaml.YAMLError as exc:
        return SpecCheck(path, None, [_syntax_problem(file, exc)])
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        return SpecCheck(path, None, [Problem(file, None, None, f"a spec must be a mapping of fields, got {got}",
                                              "start from the example: dag_id, schedule, defaults, steps")])
    problems = _duplicate_key_problems(file, root)
    duplicate = duplicate_dag_id_problem(path, effective_dag_id(data, path), root, folder)
    problems += [duplicate] if duplicate else []
    try:
        spec = BatchSpec.model_validate(data)
    except ValidationError as exc:
        return SpecCheck(path, None, _by_line(problems + problems_from_validation_error(exc, file, root)), root)
    if spec.dag_id is None:
        if not re.fullmatch(DAG_ID_PATTERN, path.stem):
            problems.append(Problem(file, None, "dag_id", f"dag_id defaults to the file name {path.stem!r}, "
                                    "which is not a valid dag_id", f"set dag_id, or rename the file ({DAG_ID_CHARS})"))
        spec = spec.model_copy(update={"dag_id": path.stem})
    problems += [problem_at(file, issue, root) for issue in availability_problems(spec)]
    from mlbatch.spec.upstream import after_problems  # here: it reads the sibling specs through this module

    problems += after_problems(spec, path, root, folder)
    return SpecCheck(path, spec, _by_line(problems), root)


def _by_line(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda problem: problem.line or 0)


def _syntax_problem(file: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return Problem(file, None, None, f"invalid YAML: {what}", "check the YAML syntax")
    line, column = mark.line + 1, mark.column + 1
    if isinstance(exc, AliasBombError):
        return Problem(file, None, None, f"{what}, from the anchor at line {line}",
                       "write the values out, or nest fewer aliases (&anchor / *alias)", line=line)
    return Problem(file, None, None, f"invalid YAML: {what} (line {line}, column {column})",
                   f"check indentation, colons and quotes around line {line}", line=line)


def _duplicate_key_problems(file: str, root: yaml.Node | None) -> list[Problem]:
    """Keys written twice in one mapping: YAML keeps only the last one, silently dropping e.g. a step."""
    problems: list[Problem] = []
    stack = [root] if root is not None else []
    visited: set[int] = set()  # aliases share nodes, and may even be recursive
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        problems.append(Problem(file, None, None, f"key {key.value!r} is written twice in the same "
                                                f"mapping (lines {seen[key.value]} and {line}); YAML keeps only the last",
                                                "remove or rename one of them", line=line))
                    seen[key.value] = line
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return problems


def duplicate_dag_id_problem(path: Path, dag_id: str, root: yaml.Node | None, folder: SpecFolder) -> Problem | None:
    """A problem for `path` when another spec file keeps the same dag_id; None when `path` keeps it."""
    claimants = folder.claimants(path, dag_id)
    owner = dag_id_owner(claimants, dag_id)
    if owner.name == path.name:
        return None
    others = ", ".join(p.name for p in claimants if p.name != path.name)
    return Problem(str(path), None, "dag_id", f"dag_id {dag_id!r} is also declared by {others}",
                   f"rename one; {owner.name} keeps {dag_id!r} and this file is not loaded",
                   line=line_of(root, ("dag_id",)))
