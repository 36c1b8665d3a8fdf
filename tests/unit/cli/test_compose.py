"""`mlbatch compose up`'s parts that need no engine: the .env it writes once, the compose binary it
finds, the content tags of the stack's images, and what it says when .env lacks a secret."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlbatch.cli import compose, compose_env, compose_images

PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture
def clone(tmp_path) -> Path:
    shutil.copy(PROJECT / ".env.example", tmp_path / ".env.example")
    return tmp_path


def test_env_is_written_once_readable_by_its_owner_alone_with_generated_secrets(clone):
    assert compose_env.write_once(clone, environ={})
    path = clone / ".env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = compose_env.read(path)
    assert compose_env.missing(values) == []
    assert values["AIRFLOW_UID"] == str(os.getuid())
    assert values["MLBATCH_ARTIFACTS_DIR"] == str(clone / "artifacts") and (clone / "artifacts").is_dir()
    assert len(values["AIRFLOW_JWT_SECRET"]) == 64 and values["POSTGRES_PASSWORD"] != "airflow"
    from cryptography.fernet import Fernet

    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # a key Airflow accepts
    assert values["AIRFLOW_API_HOST"] == "127.0.0.1"
    assert "# signs the API's tokens" in path.read_text()  # .env.example's comments document it
    before = path.read_text()
    assert not compose_env.write_once(clone, environ={})
    assert path.read_text() == before  # never rewritten: the database keeps its password


def test_each_run_generates_its_own_secrets(tmp_path):
    first, second = (tmp_path / "a", tmp_path / "b")
    for folder in (first, second):
        folder.mkdir()
        shutil.copy(PROJECT / ".env.example", folder / ".env.example")
        compose_env.write_once(folder, environ={})
    one, other = compose_env.read(first / ".env"), compose_env.read(second / ".env")
    for name in ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"):
        assert one[name] != other[name], name


def test_the_first_runs_environment_wins_and_only_for_names_of_the_example(clone):
    compose_env.write_once(clone, environ={"AIRFLOW_API_PORT": "18080", "POSTGRES_PASSWORD": "mine", "NOT_OURS": "x"})
    values = compose_env.read(clone / ".env")
    assert values["AIRFLOW_API_PORT"] == "18080" and values["POSTGRES_PASSWORD"] == "mine"
    assert "NOT_OURS" not in values


def test_the_images_make_images_made_choose_the_offline_stand_ins(clone):
    (clone / ".mlbatch").mkdir()
    (clone / ".mlbatch" / "images.env").write_text("MLBATCH_BASE_IMAGE=mlbatch-base:bookworm-1\n"
                                                    "MLBATCH_WORKER_IMAGE=mlbatch-worker:cpu-1\n")
    compose_env.write_once(clone, environ={})
    values = compose_env.read(clone / ".env")
    assert values["AIRFLOW_IMAGE"] == compose_env.OFFLINE_AIRFLOW_BASE
    assert values["POSTGRES_IMAGE"] == compose_env.OFFLINE_POSTGRES
    assert values["TORCH_INDEX_URL"] == "" and values["FIND_LINKS"] == "/tmp/wheels"


def test_up_names_what_env_lacks_and_starts_nothing(clone):
    (clone / ".env").write_text("AIRFLOW_JWT_SECRET=x\nMLBATCH_ARTIFACTS_DIR=/srv/a\n")
    said: list[str] = []
    assert compose.up(clone, out=said.append) == 1
    assert "sets no POSTGRES_PASSWORD, AIRFLOW_FERNET_KEY" in said[0] and str(clone / ".env") in said[0]


def test_the_compose_binary_is_the_one_make_install_installs():
    command = compose.compose_command()
    assert Path(command[0]).is_relative_to(Path(sys.prefix)), command  # the venv's, not a plugin the machine lacks
    done = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "v2." in done.stdout


def test_compose_reads_env_only_not_this_shells_settings(monkeypatch):
    monkeypatch.setenv("MLBATCH_BACKEND", "local")
    monkeypatch.setenv("AIRFLOW_API_PORT", "1")
    passed = compose.compose_env_vars()
    assert "MLBATCH_BACKEND" not in passed and "AIRFLOW_API_PORT" not in passed and "PATH" in passed


def test_an_image_tag_changes_with_what_goes_into_it_and_only_with_that(tmp_path):
    for name in ("deploy/compose/Dockerfile.airflow", "requirements-airflow.txt", "requirements-worker.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    build = compose_images.airflow_build(tmp_path, "base:1", {}, compose_images.OFFLINE_SOURCES)
    tag = build.tag()
    assert tag.startswith("mlbatch-compose-airflow:")
    (tmp_path / "README.md").write_text("not in the image")
    assert build.tag() == tag
    assert compose_images.airflow_build(tmp_path, "base:2", {}, compose_images.OFFLINE_SOURCES).tag() != tag
    (tmp_path / "requirements-worker.txt").write_text("numpy==2\n")
    assert build.tag() != tag


def test_the_airflow_build_context_is_the_listed_files_only():
    build = compose_images.airflow_build(PROJECT, "base:1", {}, {})
    import tarfile

    with tarfile.open(fileobj=build.context()) as tar:
        names = set(tar.getnames())
    assert names == {"wheels", "deploy/compose/Dockerfile.airflow", "requirements-airflow.txt",
                     "requirements-worker.txt"}


def test_what_mlbatch_sets_for_the_project_is_not_taken_for_a_choice(clone):
    from mlbatch.cli.project import project_settings

    compose_env.write_once(clone, environ=project_settings(clone))
    assert compose_env.read(clone / ".env")["MLBATCH_ARTIFACTS"] == ""  # empty: MLBATCH_ARTIFACTS_DIR


def test_outside_a_clone_it_says_where_to_run_it(tmp_path, capsys):
    assert compose.main(["up"], tmp_path) == 1
    assert f"no docker-compose.yaml in {tmp_path}" in capsys.readouterr().err


def test_build_writes_env_and_needs_an_engine_but_starts_nothing(clone, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{clone}/no-engine.sock")
    said: list[str] = []
    assert compose.build(clone, out=said.append) == 2
    assert (clone / ".env").is_file() and "no Docker engine answers" in said[-1]
    (clone / compose.COMPOSE_FILE).write_text("services: {}\n")
    assert compose.main(["build"], clone) == 2  # `mlbatch compose build` is ours, never compose's own build
