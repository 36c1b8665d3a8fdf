"""The base and worker images, built offline: the test suite's fixtures, `make images` and bench share this.

No container registry is reachable, so nothing is pulled:
- the base is Debian bookworm from `debootstrap --variant=minbase` (plus Python and CA certificates),
  `docker import`ed;
- the worker image is built from the project's own Dockerfile.worker (the file users build), with
  build arguments that put it on that base, take Python from the base and torch's CPU wheel from
  local files (/opt/wheels, or MLBATCH_WHEELS). Builds use the host network (Debian's mirror, PyPI).

Each image is tagged by a hash of what went into it, so a second run reuses it and a change
rebuilds only what changed. Importing this module needs no Docker engine.

Docker SDK for Python rather than the docker CLI: it is pinned in requirements.txt (the `docker`
backend uses it too), streams the build log as structured records and reports a failed step as a
value instead of text to parse. debootstrap has no Python API, so it runs as a command.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable

# one content hash, one build lock and one existence check for every image the project builds
from mlbatch.cli.compose_images import digest as _digest
from mlbatch.cli.compose_images import exclusive as _exclusive
from mlbatch.cli.compose_images import image_exists

PROJECT = Path(__file__).resolve().parents[2]
DOCKERFILE = "Dockerfile.worker"
SUITE = "bookworm"
# what the worker build needs on top of minbase: bookworm's python3 is 3.11, the version torch's wheel is for
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
DEBIAN_MIRROR = os.environ.get("MLBATCH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
WHEELS = Path(os.environ.get("MLBATCH_WHEELS", "/opt/wheels"))
# Certificate authorities this host adds to Debian's (a company's TLS-inspecting proxy): the base trusts
# them too, or builds could not reach PyPI through that proxy.
EXTRA_CAS = Path(os.environ.get("MLBATCH_EXTRA_CA_DIR", "/usr/local/share/ca-certificates"))
BASE_REPOSITORY = "mlbatch-base"
WORKER_REPOSITORY = "mlbatch-worker"
# the tag specs use by default (`image: mlbatch-worker:cpu`): `make images` moves it onto the newest build
DEFAULT_WORKER = f"{WORKER_REPOSITORY}:cpu"
# content tags of the worker image `make images` keeps; older ones are removed
KEEP = int(os.environ.get("MLBATCH_KEEP_IMAGES", "3"))
# what `make images` made, for `mlbatch compose up` (mlbatch.cli.compose_env reads it)
IMAGES_ENV = PROJECT / ".mlbatch" / "images.env"
ENABLE_HINT = "start a Docker engine as root: dockerd --bridge=none --iptables=false &"


class ImageBuildError(RuntimeError):
    """A base or worker image could not be built; the message ends with the build log's tail."""


def connect() -> Any | None:
    """A Docker SDK client of the engine DOCKER_HOST (or the local socket) names; None when none answers."""
    import docker

    try:
        # a pool large enough for the stand-in's parallel jobs, each streaming its logs while it waits
        client = docker.from_env(timeout=600, max_pool_size=32)
        client.ping()
    except Exception:  # noqa: BLE001 - any failure to reach the engine means "no engine"
        return None
    return client


def extra_cas() -> list[Path]:
    return sorted(EXTRA_CAS.glob("*.crt")) if EXTRA_CAS.is_dir() else []


def base_tag() -> str:
    """The base image's tag: a hash of the suite, the packages and the extra CAs (any mirror serves the same suite)."""
    parts = [SUITE.encode(), " ".join(BASE_PACKAGES).encode(), b"minbase"]
    parts += [cert.name.encode() + b"\0" + cert.read_bytes() for cert in extra_cas()]
    return f"{BASE_REPOSITORY}:{SUITE}-{_digest(*parts)}"


def local_wheels() -> list[Path]:
    """Wheels the offline build installs from instead of an index (torch's CPU build)."""
    return sorted(WHEELS.glob("*.whl")) if WHEELS.is_dir() else []


def context_files(root: Path | None = None) -> dict[str, Path]:
    """Build context path -> file: Dockerfile.worker, requirements-worker.txt, workers/ and the local wheels.

    `root`: the checkout they come from (default: this one; the benchmark's changed copy of workers/)."""
    root = root or PROJECT
    files = {DOCKERFILE: root / DOCKERFILE, "requirements-worker.txt": root / "requirements-worker.txt"}
    for path in sorted((root / "workers").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[str(path.relative_to(root))] = path
    for wheel in local_wheels():
        files[f"wheels/{wheel.name}"] = wheel
    return files


def build_args(base: str) -> dict[str, str]:
    """Dockerfile.worker's build arguments for a CPU image with no registry (see docs/containers.md)."""
    return {"VARIANT": "cpu", "BUILD_IMAGE": base, "CPU_IMAGE": base,
            # the classic builder builds every stage, the unused GPU base too: point it at what exists
            "CUDA_IMAGE": base,
            "PYTHON_SOURCE": "system", "FIND_LINKS": "/tmp/wheels", "TORCH_INDEX_URL": "",
            # the tag's hash names the content; a commit id would rebuild an unchanged image on every commit
            "GIT_SHA": "local"}


def worker_tag(base: str) -> str:
    """The CPU worker image's tag: a hash of the base, the build arguments and every file of the context."""
    parts = [base.encode(), json.dumps(build_args(base), sort_keys=True).encode()]
    for name, path in context_files().items():
        # wheels are large and immutable once named: name and size identify them
        content = f"{path.stat().st_size}".encode() if name.startswith("wheels/") else path.read_bytes()
        parts += [name.encode(), content]
    return f"{WORKER_REPOSITORY}:cpu-{_digest(*parts)}"


def ensure_base(client: Any, log: Callable[[str], None] = lambda line: None) -> str:
    """The base image's tag, made with debootstrap and `docker import` unless it exists already."""
    tag = base_tag()
    if image_exists(client, tag):  # the common case: no need to wait for another session's build
        return tag
    with _exclusive():
        if not image_exists(client, tag):
            build_base(client, tag, log)
    return tag


def build_base(client: Any, tag: str, log: Callable[[str], None]) -> None:
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        raise ImageBuildError(f"building {tag} needs root and debootstrap (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="mlbatch-base-", dir="/var/tmp") as work:
        root = Path(work) / "rootfs"
        log(f"debootstrap {SUITE} into {root}")
        proc = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                               SUITE, str(root), DEBIAN_MIRROR], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"debootstrap failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
        if extra_cas():
            for cert in extra_cas():
                shutil.copy(cert, root / "usr/local/share/ca-certificates" / cert.name)
            subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, capture_output=True)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):  # downloads the image does not need
            for entry in (root / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        archive = Path(work) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."], check=True)
        repository, _, version = tag.partition(":")
        log(f"docker import {tag}")
        client.api.import_image_from_file(str(archive), repository=repository, tag=version)


def ensure_worker(client: Any, base: str, log: Callable[[str], None] = lambda line: None,
                  nocache: bool = False, tag: str | None = None) -> str:
    """The CPU worker image's tag, built from Dockerfile.worker on `base` unless it exists already.

    `nocache` and a `tag` of one's own rebuild from nothing (the benchmark's cold build)."""
    tag = tag or worker_tag(base)
    if not nocache and image_exists(client, tag):
        return tag
    with _exclusive():
        if nocache or not image_exists(client, tag):
            build(client, tag, build_args(base), log, nocache=nocache)
    return tag


def _context_tar(root: Path | None = None) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if not local_wheels():  # the folder must exist for COPY even when nothing is in it
            info = tarfile.TarInfo("wheels")
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, path in context_files(root).items():
            tar.add(str(path), arcname=name, recursive=False)
    buffer.seek(0)
    return buffer


def build(client: Any, tag: str, args: dict[str, str], log: Callable[[str], None], nocache: bool = False,
          root: Path | None = None) -> None:
    """Build Dockerfile.worker of `root` with `args` on the host network; raise ImageBuildError with the log's tail."""
    lines: list[str] = []
    stream = client.api.build(fileobj=_context_tar(root), custom_context=True, dockerfile=DOCKERFILE, tag=tag,
                              buildargs=args, network_mode="host", rm=True, forcerm=True, nocache=nocache,
                              decode=True)
    for record in stream:
        if "error" in record:
            tail = "".join(lines[-40:])
            raise ImageBuildError(f"building {tag} from {DOCKERFILE} failed: {record['error']}\n{tail}")
        text = record.get("stream", "")
        if text:
            lines.append(text)
            log(text.rstrip("\n"))


def ensure_images(client: Any, log: Callable[[str], None] = lambda line: None) -> tuple[str, str]:
    """(base tag, CPU worker tag), each built only if missing."""
    base = ensure_base(client, log)
    return base, ensure_worker(client, base, log)


def publish(client: Any, base: str, worker: str, log: Callable[[str], None] = lambda line: None,
            keep: int = KEEP, images_env: Path = IMAGES_ENV) -> list[str]:
    """After a build: `mlbatch-worker:cpu` names the newest worker, content tags beyond the `keep`
    newest go, and `images_env` records the tags (and the wheels) for `mlbatch compose up`.
    Returns the tags removed."""
    from mlbatch.cli.compose_images import name_it, prune

    name_it(client, worker, DEFAULT_WORKER)
    removed = prune(client, WORKER_REPOSITORY, keep, log, prefix="cpu-")
    images_env.parent.mkdir(exist_ok=True)
    images_env.write_text(f"MLBATCH_BASE_IMAGE={base}\nMLBATCH_WORKER_IMAGE={worker}\nMLBATCH_WHEELS={WHEELS}\n")
    return removed


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.containers.images`: build the base and the CPU worker image (`make images`)."""
    parser = argparse.ArgumentParser(prog="python -m tests.containers.images", description=main.__doc__)
    parser.add_argument("--quiet", action="store_true", help="print only the tags")
    args = parser.parse_args(argv)
    client = connect()
    if client is None:
        print(f"no Docker engine answers: {ENABLE_HINT}", file=sys.stderr)
        return 2
    log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        base, worker = ensure_images(client, log)
    except ImageBuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    for tag in publish(client, base, worker, log):
        print(f"removed {tag}", file=sys.stderr)
    print(f"base:   {base}\nworker: {worker} (also {DEFAULT_WORKER})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
