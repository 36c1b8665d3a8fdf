"""What is wrong with a spec, said so a person can fix it: file, line, step, field, message, fix."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import yaml
from pydantic import ValidationError

from mlbatch.spec.checks import Issue

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    file: str
    step: str | None
    field: str | None  # dotted path from the top of the spec, e.g. "steps.train.resources.memory"
    message: str
    fix: str | None = None
    line: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        subject = []
        if self.step is not None:
            subject.append(f"step {self.step!r}")
        shown_field = self._field_within_step()
        if shown_field:
            subject.append(f"field {shown_field!r}")
        text = f"{where}: " + ("warning: " if self.severity == "warning" else "")
        text += f"{', '.join(subject)}: {self.message}" if subject else self.message
        if self.fix:
            text += (" " if text.endswith((".", "?", "!")) else ". ") + f"Fix: {self.fix}"
        return text

    def _field_within_step(self) -> str | None:
        # Inside a step the step is already named, so "steps.train.needz" reads as "needz".
        prefix = f"steps.{self.step}"
        if self.step is not None and self.field is not None and self.field.startswith(prefix):
            return self.field[len(prefix):].lstrip(".") or None
        return self.field


class SpecError(Exception):
    """A spec that cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        self.file = self.problems[0].file if self.problems else "?"
        super().__init__(str(self))

    def __str__(self) -> str:
        header = f"Batch spec {self.file} has {len(self.problems)} problem(s):"
        return "\n".join([header, *(f"  {problem}" for problem in self.problems)])


def line_of(root: yaml.Node | None, loc: Iterable[str | int]) -> int | None:
    """1-based line of the deepest key of `loc` that exists in the YAML (None if not even the first)."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            # The last duplicate key wins, as in yaml.safe_load.
            matches = [(key, value) for key, value in node.value
                       if isinstance(key, yaml.ScalarNode) and key.value == str(part)]
            if not matches:
                break
            key, node = matches[-1]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def field_path(loc: Iterable[str | int]) -> str | None:
    """("steps", "train", "needs", 1) -> "steps.train.needs[1]"."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def problem_at(file: str, issue: Issue, root: yaml.Node | None, severity: Severity = "error") -> Problem:
    """An Issue (a location in the spec) as a Problem of `file`, with its line from the YAML tree."""
    loc = tuple(issue.loc)
    step = str(loc[1]) if len(loc) > 1 and loc[0] == "steps" else None
    return Problem(file=file, step=step, field=field_path(loc), message=issue.message, fix=issue.fix,
                   line=line_of(root, loc), severity=severity)


def problems_from_validation_error(exc: ValidationError, file: str, root: yaml.Node | None) -> list[Problem]:
    """Every error of a failed spec validation as a Problem (the fix travels in the error's context)."""
    problems = []
    for error in exc.errors():
        context = error.get("ctx") or {}
        issue = Issue(tuple(error["loc"]), error["msg"], context.get("fix"))
        problems.append(problem_at(file, issue, root))
    return problems
