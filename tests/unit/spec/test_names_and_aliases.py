"""Names that stay valid as paths and AWS names; YAML aliases that cannot blow up a parse."""
from __future__ import annotations

from pathlib import Path

import pytest

from mlbatch.spec import bounded_yaml
from mlbatch.spec.fields import MAX_DAG_ID, MAX_STEP_NAME
from mlbatch.spec.lint import lint_file
from mlbatch.spec.loader import check_spec
from mlbatch.spec.models import BatchSpec

STEPS = "steps:\n  features:\n    run: features.synthetic\n"
# Some 500 bytes that expand to 9**10 values: "billion laughs".
LAUGHS = "\n".join(
    ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
) + "\nsteps:\n  s:\n    run: features.synthetic\n    params: {x: *a9}\n"


def write(tmp_path: Path, text: str, name: str = "batch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def messages(path: Path) -> list[str]:
    return [str(problem) for problem in check_spec(path).errors]


@pytest.mark.parametrize("dag_id", ['".."', '"."', '".hidden"', '"-x"', '"_x"', "a/b", '"a b"', "x" * (MAX_DAG_ID + 1)])
def test_dag_ids_that_could_leave_the_artifact_root_or_break_a_name_are_refused(tmp_path, dag_id):
    problems = messages(write(tmp_path, f"dag_id: {dag_id}\n{STEPS}"))
    assert any("dag_id" in text and "start with a letter or digit" in text for text in problems), problems


@pytest.mark.parametrize("step", ["_x", "-x", "x" * (MAX_STEP_NAME + 1)])
def test_step_names_start_with_a_letter_or_digit_and_are_capped(tmp_path, step):
    problems = messages(write(tmp_path, f"steps:\n  {step}:\n    run: features.synthetic\n"))
    assert any(f"at most {MAX_STEP_NAME} characters" in text for text in problems), problems


def test_names_at_the_caps_are_accepted(tmp_path):
    dag_id, step = "d" * MAX_DAG_ID, "s" * MAX_STEP_NAME
    check = check_spec(write(tmp_path, f"dag_id: {dag_id}\nsteps:\n  {step}:\n    run: features.synthetic\n"))
    assert check.errors == [] and check.spec is not None and step in check.spec.steps


def test_a_file_name_that_is_not_a_valid_dag_id_still_needs_one(tmp_path):
    problems = messages(write(tmp_path, STEPS, name="_private.yaml"))
    assert any("dag_id defaults to the file name '_private'" in text for text in problems), problems


def test_error_text_shows_a_shortened_value(tmp_path):
    problems = messages(write(tmp_path, f"dag_id: '{'x/' * 50_000}'\n{STEPS}"))
    assert problems and all(len(text) < 600 for text in problems), [len(text) for text in problems]


def test_the_alias_bomb_is_refused_before_any_value_is_built(tmp_path, monkeypatch):
    assert len(LAUGHS.encode()) < 600
    built, validated = [], []
    monkeypatch.setattr(bounded_yaml.yaml, "load", lambda *args, **kwargs: built.append(args))
    monkeypatch.setattr(BatchSpec, "model_validate", classmethod(lambda cls, data: validated.append(data)))
    problems = lint_file(write(tmp_path, LAUGHS))
    assert built == [] and validated == []
    assert [p.line for p in problems] and "aliases expand this document to more than 100,000 values" in str(problems[0])
    assert "nest fewer aliases" in str(problems[0])


def test_the_alias_bomb_in_a_sibling_spec_does_not_slow_the_folder_scan(tmp_path, monkeypatch):
    write(tmp_path, LAUGHS.replace("steps:", "dag_id: ok\nsteps:"), name="bomb.yaml")
    good = write(tmp_path, STEPS, name="ok.yaml")
    built = []
    original = bounded_yaml.yaml.load
    monkeypatch.setattr(bounded_yaml.yaml, "load",
                        lambda text, **kwargs: built.append(text) or original(text, **kwargs))
    check = check_spec(good)
    assert check.errors == [] and len(built) == 1  # the good spec alone was built


def test_ordinary_anchors_and_merge_keys_still_work(tmp_path):
    text = ("steps:\n  a: &common\n    run: features.synthetic\n    params: &p {rows: 10}\n"
            "  b:\n    <<: *common\n    params: *p\n")
    check = check_spec(write(tmp_path, text))
    assert check.errors == [] and check.spec.steps["b"].params == {"rows": 10}


def test_a_recursive_alias_is_refused():
    with pytest.raises(bounded_yaml.AliasBombError):
        bounded_yaml.load_bounded("a: &a [*a]\n")


def test_expanded_size_counts_each_alias_use():
    data, root = bounded_yaml.load_bounded("a: &a [1, 2]\nb: [*a, *a, *a]\n")
    assert data == {"a": [1, 2], "b": [[1, 2]] * 3}
    assert bounded_yaml.expanded_size(root)[0] == 1 + (1 + 3) + (1 + 1 + 3 * 3)


def test_a_huge_param_value_is_shown_shortened(tmp_path):
    values = "[" + ",".join(["1234567890"] * 20_000) + "]"
    problems = messages(write(tmp_path, f"steps:\n  f:\n    run: features.synthetic\n    params: {{rows: {values}}}\n"
                                         f"    timeout: '{'9' * 50_000}x'\n"))
    assert len(problems) >= 2 and all(len(text) < 800 for text in problems), [len(text) for text in problems]
