"""Lint of a command step (`image:` + `command:` instead of `run:`, docs/image-steps.md).

Reads the raw step mapping, like the other cross-field checks: the model reports wrong types.
"""
from __future__ import annotations

from workers import wire

from mlbatch.spec.checks import Issue, did_you_mean


def command_issues(name: str, step: dict) -> list[Issue]:
    """Both run: and command:, and {params.NAME} placeholders that name no param of the step."""
    if step.get("run") is not None:
        return [Issue(("steps", name, "command"), f"step {name!r} gives both run: and command:",
                      "keep run: to run a worker, or command: (with image:) to run your own image, not both")]
    command, params = step.get("command"), step.get("params") or {}
    if not isinstance(command, list) or not isinstance(params, dict):
        return []
    issues = []
    for index, arg in enumerate(command):
        if not isinstance(arg, str):
            continue
        for placeholder in wire.placeholders([arg]):
            param = placeholder.partition("params.")[2]
            if param and param not in params:
                hint = did_you_mean(param, [str(key) for key in params], f"the params of step {name!r}")
                issues.append(Issue(("steps", name, "command", index),
                                    f"{{{placeholder}}} names no param of step {name!r}",
                                    hint or f"add {param!r} under params, or fix the name"))
    return issues
