"""The image builder's tags and the fixtures' behaviour without an engine; with one, the names `make images`
gives its builds and how it prunes old ones."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.containers import images

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A minimal checkout the builder hashes: Dockerfile.worker, requirements-worker.txt, workers/."""
    (tmp_path / "workers").mkdir()
    (tmp_path / "Dockerfile.worker").write_text("FROM scratch\n")
    (tmp_path / "requirements-worker.txt").write_text("numpy==2.4.6\n")
    (tmp_path / "workers" / "run.py").write_text("print('hi')\n")
    monkeypatch.setattr(images, "PROJECT", tmp_path)
    monkeypatch.setattr(images, "WHEELS", tmp_path / "no-wheels")
    return tmp_path


def test_the_worker_tag_changes_with_what_goes_into_the_image_and_only_with_that(checkout):
    tag = images.worker_tag("mlbatch-base:bookworm-1")
    assert tag.startswith("mlbatch-worker:cpu-") and tag == images.worker_tag("mlbatch-base:bookworm-1")
    (checkout / "workers" / "__pycache__").mkdir()
    (checkout / "workers" / "__pycache__" / "run.cpython-311.pyc").write_bytes(b"\0")
    (checkout / "README.md").write_text("not in the image")
    assert images.worker_tag("mlbatch-base:bookworm-1") == tag  # bytecode and other files: no rebuild
    assert images.worker_tag("mlbatch-base:bookworm-2") != tag  # a new base
    for path, text in (("workers/run.py", "print('bye')\n"), ("requirements-worker.txt", "numpy==2.4.7\n"),
                       ("Dockerfile.worker", "FROM scratch\nUSER 1\n")):
        before = images.worker_tag("mlbatch-base:bookworm-1")
        (checkout / path).write_text(text)
        assert images.worker_tag("mlbatch-base:bookworm-1") != before, path


def test_the_build_context_holds_the_real_dockerfile_and_the_local_wheels(checkout, monkeypatch):
    wheels = checkout / "wheels-here"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"wheel")
    monkeypatch.setattr(images, "WHEELS", wheels)
    files = images.context_files()
    assert files["Dockerfile.worker"] == checkout / "Dockerfile.worker"
    assert "wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl" in files
    assert images.build_args("base")["FIND_LINKS"] == "/tmp/wheels"


def _pytest_without_an_engine(**env: str) -> subprocess.CompletedProcess:
    test = "tests/containers/test_worker_image.py::test_image_entrypoint_is_the_wire_contract"
    environ = {key: value for key, value in os.environ.items() if key != "CI"}
    environ.update(DOCKER_HOST="unix:///nonexistent/docker.sock", **env)
    return subprocess.run([sys.executable, "-m", "pytest", test, "-q", "-rs", "-p", "no:cacheprovider"],
                          cwd=PROJECT, env=environ, capture_output=True, text=True, timeout=300)


def test_without_an_engine_container_tests_skip_with_how_to_start_one():
    proc = _pytest_without_an_engine()
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout[-2000:]
    assert "dockerd --bridge=none --iptables=false" in proc.stdout


def test_under_ci_a_missing_engine_fails_instead_of_skipping():
    proc = _pytest_without_an_engine(CI="true")
    assert proc.returncode != 0 and "skipped" not in proc.stdout, proc.stdout[-2000:]
    assert "CI=true: the container tests never skip" in proc.stdout


def test_make_images_names_the_specs_default_and_records_the_tags(docker_client, base_image, worker_image, tmp_path):
    recorded = tmp_path / ".mlbatch" / "images.env"
    images.publish(docker_client, base_image, worker_image, keep=1000, images_env=recorded)
    assert docker_client.images.get(images.DEFAULT_WORKER).id == docker_client.images.get(worker_image).id
    assert f"MLBATCH_WORKER_IMAGE={worker_image}" in recorded.read_text()
    assert f"MLBATCH_BASE_IMAGE={base_image}" in recorded.read_text()


def test_pruning_keeps_the_newest_content_tags_and_the_names_on_them(docker_client, base_image):
    from mlbatch.cli.compose_images import name_it, prune

    repository = "mlbatch-prune-check"
    built = []
    try:
        for n in range(4):  # four builds, oldest first (a label each: four images)
            dockerfile = f"FROM {base_image}\nLABEL check.n={n}\n".encode()
            image, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=f"{repository}:cpu-{n}", rm=True)
            built.append(image.id)
        name_it(docker_client, f"{repository}:cpu-3", f"{repository}:cpu")
        removed = prune(docker_client, repository, keep=2, prefix="cpu-")
        assert sorted(removed) == [f"{repository}:cpu-0", f"{repository}:cpu-1"]
        left = {tag for image in docker_client.images.list(name=repository) for tag in image.tags}
        assert left == {f"{repository}:cpu-2", f"{repository}:cpu-3", f"{repository}:cpu"}
        assert not docker_client.images.list(filters={"dangling": True, "label": "check.n"})  # removed, not untagged
    finally:
        for image in docker_client.images.list(name=repository):
            docker_client.images.remove(image.id, force=True)
