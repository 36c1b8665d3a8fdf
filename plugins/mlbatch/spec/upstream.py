"""`schedule.after` names steps of other batches: check that they exist among the specs of the folder.

A batch scheduled on a step that no batch has would wait forever without a word, so a
misspelt name is an error of the consumer's spec (lint and its DAG file), with 'did you mean'.
Runs at DAG parse time: it sees the sibling specs through the check's SpecFolder
(mlbatch.spec.folder), which reads only what it must.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from mlbatch.spec.checks import Issue, did_you_mean
from mlbatch.spec.folder import SpecFolder, dag_id_owner
from mlbatch.spec.models import BatchSpec
from mlbatch.spec.problems import Problem, problem_at
from mlbatch.spec.schedules import AfterSchedule, split_ref


def after_problems(spec: BatchSpec, path: Path, root: yaml.Node | None, folder: SpecFolder) -> list[Problem]:
    """Problems of the `schedule.after` references of a valid spec read from `path`."""
    if not isinstance(spec.schedule, AfterSchedule):
        return []
    issues = []
    for index, ref in enumerate(spec.schedule.after):
        loc = ("schedule", "after", index)
        dag_id, step = split_ref(ref)
        if ref in spec.schedule.after[:index]:
            issues.append(Issue(loc, f"{ref!r} is listed twice in schedule.after", "list it once"))
        elif dag_id == spec.dag_id:
            issues.append(Issue(loc, f"a batch cannot be scheduled after its own step {step!r}",
                                "name a step of another batch; within a batch, use needs"))
        elif (steps := batch_steps(folder, path, dag_id)) is None:
            known = sorted(folder.dag_ids() - {spec.dag_id})
            issues.append(Issue(loc, f"no batch {dag_id!r} among the specs in {path.parent}",
                                did_you_mean(dag_id, known, "the batches") or "add its spec first"))
        elif step not in steps:
            issues.append(Issue(loc, f"batch {dag_id!r} has no step {step!r}",
                                did_you_mean(step, steps, f"the steps of {dag_id!r}")))
    return [problem_at(str(path), issue, root) for issue in issues]


def batch_steps(folder: SpecFolder, path: Path, dag_id: str) -> list[str] | None:
    """Step names of the sibling spec that keeps `dag_id`; None when no other spec claims it."""
    claimants = [p for p in folder.claimants(path, dag_id) if p.name != path.name]
    if not claimants:
        return None
    claim = folder.claim(dag_id_owner(claimants, dag_id).name)
    return claim.steps if claim is not None and claim.steps is not None else []
