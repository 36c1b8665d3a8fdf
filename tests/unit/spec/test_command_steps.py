"""Lint of command steps (image: + command: instead of run:): each error names the spec, the step, the field
and the fix; a command step with no image runs locally, one with an image needs a container backend."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlbatch.spec.loader import load_spec
from mlbatch.spec.problems import Problem, SpecError


def _problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[Problem]:
    path = tmp_path / "team.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(path) in str(info.value)
    return info.value.problems


def _the_problem(tmp_path: Path, text: str) -> Problem:
    (problem,) = _problems(tmp_path, text)
    return problem


def test_a_step_with_run_and_command_says_keep_one(tmp_path: Path) -> None:
    problem = _the_problem(tmp_path, """
        steps:
          score: {run: check.noop, command: [python3, score.py]}
    """)
    assert (problem.step, problem.field) == ("score", "steps.score.command")
    assert problem.message == "step 'score' gives both run: and command:"
    assert "not both" in problem.fix


def test_an_image_on_the_local_backend_needs_a_container_backend(tmp_path: Path) -> None:
    problem = _the_problem(tmp_path, """
        steps:
          score: {image: team/score:1, command: [python3, score.py]}
    """)
    assert (problem.step, problem.field) == ("score", "steps.score.image")
    assert problem.message.startswith("an image step needs a container backend (backend: docker, batch, ecs)")
    assert problem.fix.startswith("set backend: to one of docker, batch, ecs, or remove image:")


def test_an_unknown_param_in_the_command_is_named_with_the_closest_one(tmp_path: Path) -> None:
    problem = _the_problem(tmp_path, """
        steps:
          score:
            image: team/score:1
            backend: docker
            command: [python3, score.py, --scale, "{params.scael}"]
            params: {scale: 2}
    """)
    assert (problem.step, problem.field) == ("score", "steps.score.command[3]")
    assert problem.message == "{params.scael} names no param of step 'score'"
    assert problem.fix == "did you mean 'scale'?"


def test_params_too_large_for_mlbatch_params_say_pass_a_file_uri(tmp_path: Path) -> None:
    step = """
        steps:
          score:
            image: team/score:1
            backend: batch
            command: [python3, score.py]
            params: {labels: "%s"}
    """
    problem = _the_problem(tmp_path, step % ("x" * 4100))
    assert (problem.step, problem.field) == ("score", "steps.score.params")
    assert problem.message.startswith("the params of step 'score' are 4114 bytes as JSON, over the 4096 bytes that "
                                      "travel inline in MLBATCH_PARAMS")
    assert problem.fix.startswith("put large values in a file (or an object in S3) and pass its URI")
    path = tmp_path / "fits.yaml"
    path.write_text(textwrap.dedent(step % ("x" * 4000)))
    assert load_spec(path).steps["score"].params == {"labels": "x" * 4000}  # under the bound: fine


def test_a_container_backend_without_any_image_written_says_add_one(tmp_path: Path) -> None:
    problem = _the_problem(tmp_path, """
        steps:
          score: {backend: docker, command: [python3, score.py]}
    """)
    assert (problem.step, problem.field) == ("score", "steps.score.command")
    assert "names no image" in problem.message and problem.fix.startswith("add image:")


def test_a_command_without_an_image_runs_locally_and_one_with_an_image_on_its_container_backend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLBATCH_BACKEND", "docker")  # the default backend: a command with no image stays local
    path = tmp_path / "team.yaml"
    path.write_text(textwrap.dedent("""
        steps:
          features: {run: features.synthetic}
          hello: {command: [sh, -c, "echo {params.word}"], params: {word: hi, nested: {a: [1, 2]}}}
          score: {image: team/score:1, command: [score], needs: [features], shards: 3, gate: {metric: auc, min: 0.7}}
    """))
    steps = load_spec(path).resolved_steps()
    assert (steps["hello"].backend, steps["hello"].run, steps["hello"].command) == ("local", None,
                                                                                    ("sh", "-c", "echo {params.word}"))
    assert steps["hello"].params == {"word": "hi", "nested": {"a": [1, 2]}}  # free-form JSON
    assert (steps["score"].backend, steps["score"].image) == ("docker", "team/score:1")
    assert steps["features"].backend == "docker" and steps["score"].gate is not None  # gated on its shards' mean
