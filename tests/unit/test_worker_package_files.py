"""The example worker package's files: an installable package whose Dockerfile builds a team image
from the worker image (the image itself is built only where images are built, not here)."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.worker_packages import EXAMPLE

DOCKERFILE = (EXAMPLE / "Dockerfile").read_text()


def test_the_package_declares_its_worker_in_the_group():
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["mlbatch.workers"] == {"quality.nulls": "mlbatch_quality.catalogue:NULLS"}
    assert not any(dep.startswith("mlbatch") for dep in project["dependencies"])  # mlbatch is no PyPI package


def test_the_team_image_is_the_worker_image_with_the_package_in_its_virtualenv():
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert stages == ["${BUILD_IMAGE}", "${WORKER_IMAGE}"]
    assert "ARG WORKER_IMAGE=mlbatch-worker:cpu" in DOCKERFILE
    assert re.search(r"^RUN python3 -m venv /opt/pip && /opt/pip/bin/pip install --no-deps --target /site /src$",
                     DOCKERFILE, re.M)
    assert "COPY --from=build --chown=root:root /site/ /opt/venv/lib/python3.11/site-packages/" in DOCKERFILE
    lines = [line for line in DOCKERFILE.splitlines() if line and not line.startswith("#")]
    assert lines[-1] == "USER 10001:10001"  # the worker image's unprivileged user, as in Dockerfile.worker
    assert not re.search(r"^(ENTRYPOINT|CMD)", DOCKERFILE, re.M)  # `python -m workers` stays the entrypoint
    assert "USER 10001:10001" in (Path(__file__).resolve().parents[2] / "Dockerfile.worker").read_text()


def test_the_tests_use_the_example_from_a_folder_of_its_own_and_leave_the_path_as_it_was():
    import importlib.util
    import os
    import sys
    from importlib import metadata

    from tests.worker_packages import EXAMPLE_DISTRIBUTION, example_installed
    from workers.registry import WORKERS

    path, pythonpath = list(sys.path), os.environ.get("PYTHONPATH")
    with example_installed() as site:
        assert importlib.util.find_spec("mlbatch_quality").origin.startswith(str(site))
        [dist] = [d for d in metadata.distributions(path=[str(site)])]
        assert dist.metadata["Name"] == EXAMPLE_DISTRIBUTION  # pip's dist-info, with the entry points
        assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(site)  # Airflow's processes find it too
        assert WORKERS["quality.nulls"].package == "mlbatch_quality"
    assert (sys.path, os.environ.get("PYTHONPATH")) == (path, pythonpath)
    assert "mlbatch_quality" not in sys.modules
