"""The project installs as a package: an `mlbatch` command, `mlbatch` and `workers` importable
without PYTHONPATH, and extras that are exactly the requirement files (so an image gets its part).

Builds the wheel from this tree without dependencies (no network, no second full install)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from mlbatch.cli.scaffold import loader_source

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


def test_the_wheel_registers_the_plugin_and_the_provider(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[airflow.plugins]\nmlbatch = mlbatch.ui.plugin:MlbatchPlugin" in entry_points
    assert "[apache_airflow_provider]\nprovider_info = mlbatch.provider:get_provider_info" in entry_points
    assert "mlbatch/ui/app.py" in names and "mlbatch_plugin.py" not in names  # the folder shim stays out


SPEC = "description: One step\nschedule: null\nsteps:\n  tick: {run: check.noop}\n"


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def _dependencies_without_mlbatch(target: Path) -> Path:
    """This venv's installed packages (Airflow and the rest of the extra) minus mlbatch itself: a folder
    of links to each, for a fresh venv to see through a .pth. The editable install's finder, .pth and
    metadata stay out, so only the wheel provides mlbatch there (a real full install takes minutes)."""
    ours = _site_packages(Path(sys.prefix))
    target.mkdir()
    for entry in ours.iterdir():
        if entry.name.startswith(("mlbatch", "__editable__", "workers")) or entry.suffix == ".pth":
            continue
        (target / entry.name).symlink_to(entry)
    return target


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A new venv with the wheel installed (not editable), the Airflow extra's packages from this venv."""
    root = tmp_path_factory.mktemp("fresh")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    deps = _dependencies_without_mlbatch(root / "deps")
    (_site_packages(venv) / "airflow-extra.pth").write_text(f"{deps}\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, timeout=300, cwd=root,
                   # nothing of the project on the path: setuptools' mlbatch.egg-info there reads as installed
                   env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return venv


def _run_in(venv: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    """A command of the new venv, from a folder outside the repository, with nothing of it on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLBATCH_", "PYTHON", "VIRTUAL_ENV"))}
    (root / "plugins").mkdir(exist_ok=True)
    env.update({"AIRFLOW_HOME": str(root / "home"), "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "MLBATCH_SPEC_INDEX_DIR": str(root / "index"), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"})
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_is_a_plugin_a_provider_and_loads_a_dags_folder(installed, tmp_path):
    dags = tmp_path / "dags"
    (dags / "specs").mkdir(parents=True)
    (dags / "tiny.py").write_text(loader_source("tiny"))  # what `mlbatch new` writes
    (dags / "specs" / "tiny.yaml").write_text(SPEC)
    python = str(installed / "bin" / "python")
    where = _run_in(installed, tmp_path, python, "-c", "import mlbatch, sys; print(mlbatch.__file__); print(sys.path)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(_site_packages(installed))) and str(PROJECT) not in where.stdout

    plugins = _run_in(installed, tmp_path, python, "-m", "airflow", "plugins", "--output", "json")
    assert plugins.returncode == 0, plugins.stderr
    [plugin] = [p for p in json.loads(plugins.stdout) if p["name"] == "mlbatch"]
    assert "mlbatch.ui.plugin" in plugin["source"] or "mlbatch" in plugin["source"], plugin

    providers = _run_in(installed, tmp_path, python, "-m", "airflow", "providers", "list", "--output", "json")
    assert providers.returncode == 0, providers.stderr
    assert [p["package_name"] for p in json.loads(providers.stdout) if p["package_name"] == "mlbatch"] == ["mlbatch"]

    bag = _run_in(installed, tmp_path, python, "-c", "from airflow.dag_processing.dagbag import DagBag; "
                  f"bag = DagBag({str(dags)!r}); print(sorted(bag.dag_ids), bag.import_errors)")
    assert bag.returncode == 0, bag.stderr
    assert bag.stdout.strip().splitlines()[-1] == "['tiny'] {}"

    lint = _run_in(installed, tmp_path, str(installed / "bin" / "mlbatch"), "lint", str(dags / "specs" / "tiny.yaml"))
    assert lint.returncode == 0, lint.stdout + lint.stderr
