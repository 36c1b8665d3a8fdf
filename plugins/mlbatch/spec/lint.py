"""Check spec files before they reach Airflow: every error the loader would raise, plus warnings."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from mlbatch.cli.project import find_root
from mlbatch.spec.checks import Issue
from mlbatch.backends.traits import backend_info
from mlbatch.spec.bounded_yaml import load_bounded
from mlbatch.spec.folder import SpecFolder, spec_files
from mlbatch.spec.loader import check_spec
from mlbatch.spec.memory_floor import memory_floor_warnings
from mlbatch.spec.models import BatchSpec, setting_at
from mlbatch.spec.orphans import orphan_problems
from mlbatch.spec.problems import Problem, problem_at
from mlbatch.spec.sources import source_issues


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Spec files named by `paths` (directories give their *.yaml, *.yml), and problems for missing paths."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = spec_files(path)
            if not found:
                problems.append(Problem(str(path), None, None, "no spec files (*.yaml, *.yml) in this directory",
                                        severity="warning"))
            files += found
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, None, "no such file or directory"))
    return files, problems


def lint_paths(paths: Iterable[Path], cpu_count: int | None = None) -> list[Problem]:
    """Every problem of the spec files under `paths`, warnings included (see Problem.severity)."""
    return lint_specs(paths, cpu_count)[1]


def lint_specs(paths: Iterable[Path], cpu_count: int | None = None) -> tuple[list[Path], list[Problem]]:
    """The spec files under `paths` and every problem of them: what `mlbatch lint` prints."""
    files, problems = expand_paths(Path(p) for p in paths)
    folders: dict[Path, SpecFolder] = {}  # one per directory: each sibling is read and parsed once per run
    for file in files:
        folder = folders.setdefault(file.parent, SpecFolder(file.parent))
        problems += lint_file(file, cpu_count, folder)
    return files, problems + orphan_problems(files)


def lint_file(path: Path, cpu_count: int | None = None, folder: SpecFolder | None = None) -> list[Problem]:
    """The loader's problems of one spec file, plus warnings when the spec itself is valid."""
    check = check_spec(path, folder)
    problems = list(check.problems)
    source_errors, source_warnings = source_issues(_raw_spec(path), find_root(path.parent))
    problems += [problem_at(str(path), issue, check.root) for issue in source_errors]
    problems += [problem_at(str(path), issue, check.root, severity="warning") for issue in source_warnings]
    if check.spec is not None:
        cpus = cpu_count if cpu_count is not None else local_cpu_count()
        try:
            warnings = (local_vcpu_warnings(check.spec, cpus) + oom_growth_warnings(check.spec)
                        + memory_floor_warnings(check.spec) + remote_network_warnings(check.spec))
        except ValueError:  # a bad MLBATCH_BACKEND: the loader reported it as an error already
            return sorted(problems, key=lambda problem: problem.line or 0)
        warnings += alert_connection_warnings(check.spec)
        problems += [problem_at(str(path), issue, check.root, severity="warning") for issue in warnings]
    return sorted(problems, key=lambda problem: problem.line or 0)


def _raw_spec(path: Path) -> Any:
    """The spec as plain YAML data (None where it is unreadable: the loader said why already), so the
    checks of its data sources run even when other fields are wrong."""
    import yaml

    try:
        return load_bounded(path.read_text(encoding="utf-8"))[0]  # the loader's own rules, aliases bounded
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def local_cpu_count() -> int:
    """CPUs this process may use (the affinity mask, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_vcpu_warnings(spec: BatchSpec, cpus: int) -> list[Issue]:
    """Local steps asking for more vCPU than the machine has: they would get the whole machine at most."""
    inherited: list[str] = []
    issues = []
    for name, step in spec.resolved_steps().items():
        if not backend_info(step.backend).on_this_machine or step.vcpu <= cpus:
            continue
        own = spec.steps[name].resources
        if own is not None and "vcpu" in own.model_fields_set:
            issues.append(Issue(("steps", name, "resources", "vcpu"), _too_many(step.vcpu, cpus), _lower(cpus)))
        else:
            inherited.append(name)
    if inherited:
        vcpu = spec.defaults.resources.vcpu
        issues.append(Issue(("defaults", "resources", "vcpu"),
                            f"{_too_many(vcpu, cpus)} (inherited by {', '.join(inherited)})", _lower(cpus)))
    return issues


def oom_growth_warnings(spec: BatchSpec) -> list[Issue]:
    """on_oom whose max is not above the step's memory: an OOM could never get a larger budget."""
    issues = []
    for name, step in spec.resolved_steps().items():
        if step.oom_grow is not None and step.oom_max_mib <= step.memory_mib:
            where = ("steps", name, "on_oom", "max") if spec.steps[name].on_oom else ("defaults", "on_oom", "max")
            issues.append(Issue(where, f"on_oom.max ({step.oom_max_mib} MiB) is not above the memory budget of step "
                                       f"'{name}' ({step.memory_mib} MiB): an OOM retry could not grow",
                                f"set on_oom.max above {step.memory_mib} MiB"))
    return issues


def remote_network_warnings(spec: BatchSpec) -> list[Issue]:
    """`network: none` on an AWS step: its job has its compute environment's network, which no container can drop."""
    issues = []
    for name, step in spec.resolved_steps().items():
        info = backend_info(step.backend)
        if step.network == "none" and info.in_containers and not info.sets_network:
            issues.append(Issue(setting_at(name, spec.steps[name], "network"),
                                f"step '{name}' runs on {step.backend}, where its job has the compute environment's "
                                "network (awsvpc): network: none is not enforced there",
                                "leave network out for AWS steps; limit their traffic with the security group"))
    return issues


def alert_connection_warnings(spec: BatchSpec) -> list[Issue]:
    """An alert connection that is not defined: alerts would be lost (the DAG itself still runs)."""
    from mlbatch.alerts.connections import connection_defined

    conn_id = spec.alerts.slack
    if not conn_id or connection_defined(conn_id) is not False:
        return []
    return [Issue(("alerts", "slack"), f"Airflow connection {conn_id!r} is not defined: alerts would not be sent",
                  f"airflow connections add {conn_id} --conn-type slackwebhook --conn-password '<webhook URL>'")]


def _too_many(vcpu: float, cpus: int) -> str:
    return f"asks for {vcpu:g} vcpu on the local backend, but this machine has {cpus} CPU(s)"


def _lower(cpus: int) -> str:
    return f"lower resources.vcpu to at most {cpus}; locally a worker never gets more than the machine's CPUs"
