"""Worker packages for the tests: the example package installed into a folder of its own (never into
the developer's virtualenv), put on the path of only the tests that use it; and small distributions
written on the fly into a folder on sys.path (a dist-info with its entry points: what pip leaves
behind, read the same way)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLE = PROJECT / "examples" / "worker-package"
EXAMPLE_DISTRIBUTION = "mlbatch-quality"
EXAMPLE_PACKAGE = "mlbatch_quality"


def example_digest() -> str:
    """A hash of what pip installs from the example: its pyproject.toml and its sources."""
    digest = hashlib.sha256()
    for path in [EXAMPLE / "pyproject.toml", *sorted((EXAMPLE / "src").rglob("*.py"))]:
        digest.update(path.relative_to(EXAMPLE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def example_site() -> Path:
    """A folder holding the example package as pip installs it (its code and its dist-info with the
    entry points), made once per content of the package and shared by every test session."""
    site = Path(tempfile.gettempdir()) / f"mlbatch-example-site-{example_digest()}"
    if site.is_dir():
        return site
    with tempfile.TemporaryDirectory(prefix="mlbatch-example-build-") as work:
        source = Path(work) / "source"  # a copy: the build leaves no egg-info or build/ in the checkout
        shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", "--target", str(Path(work) / "site"), str(source)],
                       check=True, timeout=300, capture_output=True)
        try:
            os.rename(Path(work) / "site", site)  # whole or not at all, whichever session gets there first
        except OSError:
            if not site.is_dir():
                raise
    return site


@contextmanager
def example_installed() -> Iterator[Path]:
    """The example package importable, and its workers declared, in this process and in the processes
    it starts (PYTHONPATH: Airflow's), while the block runs; the virtualenv stays as it was."""
    site = str(example_site())
    saved = os.environ.get("PYTHONPATH")
    sys.path.insert(0, site)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [site, saved]))
    _forget_example()
    try:
        yield Path(site)
    finally:
        sys.path.remove(site)
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
        _forget_example()


def _forget_example() -> None:
    """Drop the example's modules and the registry's view, so the next lookup reads sys.path again."""
    from workers.registry import WORKERS

    for name in [m for m in sys.modules if m.split(".")[0] == EXAMPLE_PACKAGE]:
        del sys.modules[name]
    WORKERS.refresh()


def write_distribution(folder: Path, name: str, entries: dict[str, str], modules: dict[str, str]) -> Path:
    """An installed distribution `name` in `folder`: its modules and its mlbatch.workers entries."""
    info = folder / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entries.items())
    (info / "entry_points.txt").write_text(f"[mlbatch.workers]\n{lines}")
    for module, source in modules.items():
        path = folder / Path(*module.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.with_suffix(".py")).write_text(textwrap.dedent(source))
    return folder
