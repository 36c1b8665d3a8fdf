"""Checks of a batch spec that span fields: workers and their params, needs, cycles, shards.of.

They read the raw mapping (as loaded from YAML), not the validated models, so they still run
when some other part of the spec has a type error: one lint pass reports everything.
"""
from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from pydantic import ValidationError

from workers.registry import WORKERS, WorkerLoadError


class Issue(NamedTuple):
    """One problem at a place in the spec; `loc` is the path of keys, e.g. ("steps", "train", "needs")."""

    loc: tuple[str | int, ...]
    message: str
    fix: str | None = None


class SpecValueError(ValueError):
    """A field validator's error that also knows how to fix it."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def shown(value: Any, limit: int = 60) -> str:
    """repr of a value for an error message, cut to about `limit` characters (a spec may hold megabytes)."""
    import reprlib  # here: only an error message needs it

    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    short.maxlist = short.maxtuple = short.maxset = short.maxdict = 6
    short.maxlevel = 3
    text = short.repr(value)
    return text if len(text) <= limit + 10 else text[:limit] + "..."


SHORTLIST = 5  # choices a message lists at most: the closest to what was written, then how many more


def did_you_mean(name: str, choices: Iterable[str], what: str = "") -> str | None:
    """'did you mean 'x'?' for the closest choice, else the closest few choices (None if there are none)."""
    choices = sorted(choices)
    name = name[:200]  # difflib's cost grows with the length
    import difflib  # here: only a misspelt name needs it, and every DAG parse imports this module

    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if not choices:
        return None
    return f"use one of{' ' + what if what else ''}: {shortlist(name, choices)}"


def shortlist(name: str, choices: Iterable[str], most: int = SHORTLIST) -> str:
    """The choices closest to `name`, at most `most` of them, and how many more there are: a list of
    67 columns on one line hides the one that was meant."""
    import difflib

    choices = list(dict.fromkeys(choices))
    if len(choices) <= most:
        return ", ".join(choices)
    close = difflib.get_close_matches(name, choices, n=most, cutoff=0.0)
    return f"{', '.join(close)} (and {len(choices) - len(close)} more)"


def cross_field_issues(data: Any) -> list[Issue]:
    """Issues of the `steps` mapping that no single field's type can catch."""
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, dict):
        return []
    issues: list[Issue] = []
    for name, step in steps.items():
        if isinstance(name, str) and isinstance(step, dict):
            issues += _worker_issues(name, step)
            issues += _needs_issues(name, step, steps)
    issues += _cycle_issues(steps)
    return issues


def _worker_issues(name: str, step: dict) -> list[Issue]:
    run = step.get("run")
    if "command" in step:
        from mlbatch.spec.commands import command_issues

        return command_issues(name, step)
    if run is None:
        return [Issue(("steps", name, "run"), "required field is missing (a step gives run: or command:)",
                      f"add 'run: <worker>' (workers: {', '.join(sorted(WORKERS))}), or 'command: [...]' with "
                      "image: to run your own image (docs/image-steps.md)")]
    if not isinstance(run, str):
        return []  # missing or mistyped: the model reports it
    if run not in WORKERS:
        hint = did_you_mean(run, WORKERS)  # every installed package's workers, by name: none is imported
        if hint and hint.startswith("did"):
            fix = f"{hint} (every worker: python -m workers list)"
        else:  # nothing close: perhaps its package is not installed here
            fix = (f"use one of the closest workers: {shortlist(run, WORKERS)} (every worker: python -m workers "
                   "list); a worker of your own package is found once the package is installed "
                   "(pip install -e <its folder>)")
        return [Issue(("steps", name, "run"), f"unknown worker {shown(run)}", fix)]
    try:
        model = WORKERS[run].params
    except WorkerLoadError as error:  # its package is broken: this step says so, other batches still load
        return [Issue(("steps", name, "run"), error.message, error.fix)]
    params = step.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return []
    try:
        model.model_validate(params)
    except ValidationError as exc:
        return [_param_issue(name, run, model, error) for error in exc.errors()]
    return []


def _param_issue(step: str, worker: str, model: type, error: dict) -> Issue:
    loc = ("steps", step, "params", *error["loc"])
    param = ".".join(str(part) for part in error["loc"])
    known = list(model.model_fields)
    if error["type"] == "extra_forbidden":
        if not known:
            return Issue(loc, f"unknown param {shown(param)}: worker {worker!r} takes no params", "remove it")
        return Issue(loc, f"unknown param {shown(param)} for worker {worker!r}",
                     did_you_mean(param, known, f"the params of {worker!r}"))
    if error["type"] == "missing":
        field = model.model_fields.get(param)
        about = f" ({field.description})" if field is not None and field.description else ""
        return Issue(loc, f"param {param!r} is required by worker {worker!r}{about}",
                     f"add it under params, e.g. params: {{{param}: ...}}")
    return Issue(loc, f"param {param!r}: {error['msg']} (got {shown(error['input'])})")


def _needs_issues(name: str, step: dict, steps: dict) -> list[Issue]:
    issues = []
    needs = step.get("needs")
    needs = needs if isinstance(needs, list) else []
    others = [other for other in steps if isinstance(other, str) and other != name]
    for index, need in enumerate(needs):
        loc = ("steps", name, "needs", index)
        if not isinstance(need, str):
            continue
        if need == name:
            issues.append(Issue(loc, f"step {name!r} needs itself", f"remove {name!r} from needs"))
        elif need not in steps:
            issues.append(Issue(loc, f"needs unknown step {need!r}", did_you_mean(need, others, "the steps")))
        elif needs.index(need) != index:
            issues.append(Issue(loc, f"step {need!r} is listed twice in needs", "list it once"))
    shards = step.get("shards")
    of = shards.get("of") if isinstance(shards, dict) else None
    if isinstance(of, str) and "." in of:
        source = of.split(".", 1)[0]
        loc = ("steps", name, "shards", "of")
        if source not in steps:
            issues.append(Issue(loc, f"shards.of names unknown step {source!r}",
                                did_you_mean(source, others, "the steps")))
        elif source not in needs:
            issues.append(Issue(loc, f"shards.of reads a count of step {source!r}, which is not in needs",
                                f"add {source!r} to needs (the count is only known once it has run)"))
    return issues


def _cycle_issues(steps: dict) -> list[Issue]:
    """One issue per cycle of needs, named "a -> b -> a" (a needs b, b needs a).

    Self-needs are reported by _needs_issues.
    """
    graph = {
        name: [n for n in step.get("needs") or [] if isinstance(n, str) and n in steps and n != name]
        for name, step in steps.items()
        if isinstance(name, str) and isinstance(step, dict) and isinstance(step.get("needs") or [], list)
    }
    order = {name: index for index, name in enumerate(steps)}
    state: dict[str, str] = {}  # "open" while on the DFS path, "done" after
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for need in graph.get(node, []):
            if state.get(need) == "open":
                cycles.append(path[path.index(need):])
            elif need not in state:
                visit(need)
        path.pop()
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name)
    issues = []
    for cycle in cycles:
        # Start at the step declared first, so the message is the same whatever the DFS order.
        start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
        cycle = cycle[start:] + cycle[:start]
        shown = " -> ".join([*cycle, cycle[0]])
        issues.append(Issue(("steps", cycle[0], "needs"), f"needs form a cycle: {shown}",
                            "remove one of these needs; steps must form a DAG"))
    return issues
