"""Worker packages for the tests: the example package installed into this virtualenv (as a user
would, `pip install -e examples/worker-package`), and small distributions written on the fly into a
folder on sys.path (a dist-info with its entry points: what pip leaves behind, read the same way)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLE = PROJECT / "examples" / "worker-package"
EXAMPLE_DISTRIBUTION = "mlbatch-quality"


def install_example() -> None:
    """`pip install -e examples/worker-package` into this virtualenv, unless it is there already."""
    try:
        metadata.distribution(EXAMPLE_DISTRIBUTION)
        return
    except metadata.PackageNotFoundError:
        pass
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-e", str(EXAMPLE)], check=True, timeout=300)
    # this interpreter read the virtualenv's .pth files when it started: the new one maps src/ alike
    sys.path.append(str(EXAMPLE / "src"))
    from workers.registry import WORKERS

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
