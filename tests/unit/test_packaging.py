"""The project installs as a package: an `mlbatch` command, `mlbatch` and `workers` importable
without PYTHONPATH, and extras that are exactly the requirement files (so an image gets its part).

Builds the wheel from this tree without dependencies (no network, no second full install)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
EXTRAS = {"airflow": "requirements-airflow.txt", "worker": "requirements-worker.txt", "test": "requirements-test.txt"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source")
    # built from a copy of what a clone has: setuptools' build/ and egg-info stay out of the tree
    for name in ("pyproject.toml", "README.md", "requirements.txt", *EXTRAS.values()):
        shutil.copy(PROJECT / name, source / name)
    for package in ("plugins", "workers"):
        shutil.copytree(PROJECT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True, text=True, timeout=300)
    return next(out.glob("mlbatch-*.whl"))


def pins(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def test_the_wheel_has_both_packages_and_the_command(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "mlbatch/cli/main.py" in names and "workers/tabular/train.py" in names
    assert not any(name.startswith(("tests/", "bench/", "dags/", "plugins/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    declared = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "mlbatch = mlbatch.cli.main:main" in declared
    assert "[mlbatch.workers]\narticles.corpus = workers.catalogue:ARTICLES_CORPUS" in declared  # the catalogue


def test_extras_are_the_requirement_files(wheel):
    metadata = zipfile.ZipFile(wheel).read(next(n for n in zipfile.ZipFile(wheel).namelist()
                                                if n.endswith("METADATA"))).decode()
    for extra, file in EXTRAS.items():
        wanted = {pin.replace(" ", "") for pin in pins(PROJECT / file)}
        found = {line.split(": ", 1)[1].split(";")[0].replace(" ", "") for line in metadata.splitlines()
                 if line.startswith("Requires-Dist:") and f'extra == "{extra}"' in line}
        assert found == wanted, extra
    assert not any("apache-airflow" in pin for pin in pins(PROJECT / "requirements-worker.txt"))  # workers never need Airflow


def test_requirements_txt_is_the_three_sets_for_one_resolve():
    lines = [line for line in (PROJECT / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert sorted(lines) == sorted(f"-r {file}" for file in EXTRAS.values())
    optional = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]
    assert {name: spec["file"] for name, spec in optional["optional-dependencies"].items()} == \
        {name: [file] for name, file in EXTRAS.items()}


def test_installed_packages_import_without_pythonpath_and_the_command_runs(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # the installed files only (dependencies from this venv), from a folder outside any project
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLBATCH_"))}
    env["PYTHONPATH"] = str(target)
    found = subprocess.run([sys.executable, "-c", "import mlbatch, workers; print(mlbatch.__file__, workers.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.split() == [str(target / "mlbatch" / "__init__.py"), str(target / "workers" / "__init__.py")]
    command = subprocess.run([str(target / "bin" / "mlbatch"), "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert command.returncode == 0, command.stderr
    assert "airflow" in command.stdout and "lint" in command.stdout
