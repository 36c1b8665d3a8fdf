"""A step's `network:`: none or host, from the step, its defaults or the [docker] setting; never the bridge."""
from __future__ import annotations

from pathlib import Path

import pytest

from mlbatch.spec.lint import lint_file
from mlbatch.spec.loader import load_spec

SPEC = """\
defaults: {{backend: {backend}{defaults}}}
steps:
  fetch: {{run: check.noop{fetch}}}
  train: {{run: check.noop, needs: [fetch]}}
"""


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch):
    monkeypatch.delenv("MLBATCH_BACKEND", raising=False)


def _spec(tmp_path: Path, backend: str = "docker", defaults: str = "", fetch: str = "") -> Path:
    path = tmp_path / "churn.yaml"
    path.write_text(SPEC.format(backend=backend, defaults=defaults, fetch=fetch))
    return path


def _networks(path: Path) -> dict[str, str | None]:
    return {name: step.network for name, step in load_spec(path).resolved_steps().items()}


def test_a_step_without_network_leaves_it_to_the_settings(tmp_path):
    assert _networks(_spec(tmp_path)) == {"fetch": None, "train": None}  # [docker] network: none by default


def test_a_step_that_needs_the_network_says_so_alone(tmp_path):
    assert _networks(_spec(tmp_path, fetch=", network: host")) == {"fetch": "host", "train": None}


def test_the_step_wins_over_the_defaults(tmp_path):
    path = _spec(tmp_path, defaults=", network: host", fetch=", network: none")
    assert _networks(path) == {"fetch": "none", "train": "host"}


@pytest.mark.parametrize("value", ["bridge", "Bridge!", "true"])
def test_a_network_other_than_none_or_host_is_refused_with_the_fix(tmp_path, value):
    path = _spec(tmp_path, fetch=f", network: {value}")
    problems = lint_file(path)
    assert [(p.file, p.field, p.severity) for p in problems] == [(str(path), "steps.fetch.network", "error")]
    assert "network: none" in problems[0].fix and "network: host" in problems[0].fix
    assert ("Docker's bridge network" in problems[0].message) == (value == "bridge")


@pytest.mark.parametrize("backend", ["batch", "ecs"])
def test_network_none_on_aws_is_a_warning_there_is_no_such_thing(tmp_path, backend):
    path = _spec(tmp_path, backend=backend, fetch=", network: none")
    (problem,) = [p for p in lint_file(path) if "network" in (p.field or "")]
    assert (problem.field, problem.severity) == ("steps.fetch.network", "warning")
    assert "compute environment's network" in problem.message and "security group" in problem.fix


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_network_none_is_silent_where_it_is_enforced_or_documented(tmp_path, backend):
    path = _spec(tmp_path, backend=backend, defaults=", network: none", fetch=", network: host")
    assert not [p for p in lint_file(path) if "network" in (p.field or "")]


def test_aws_steps_that_leave_network_out_get_no_warning(tmp_path):
    assert not [p for p in lint_file(_spec(tmp_path, backend="batch")) if "network" in (p.field or "")]
