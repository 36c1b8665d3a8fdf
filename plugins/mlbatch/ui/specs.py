"""A batch's resolved steps (budget, vCPU, gate), from the spec its loader file names."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlbatch.spec.problems import SpecError

# what `mlbatch new` writes: dag = build_dag(__file__, "specs/NAME.yaml")
LOADER_CALL = re.compile(r"build_dag\(\s*__file__\s*,\s*[\"']([^\"']+)[\"']")


def resolved_steps(loader_file: str) -> dict[str, Any]:
    """step name -> ResolvedStep; empty when the loader or its spec cannot be read (the page still shows the run)."""
    path = Path(loader_file)
    try:
        return _steps(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError, SpecError):
        return {}


@lru_cache(maxsize=256)
def _steps(loader_file: str, _mtime_ns: int) -> dict[str, Any]:
    from mlbatch.spec.loader import load_spec

    found = LOADER_CALL.search(Path(loader_file).read_text())
    if not found:
        return {}
    return load_spec(Path(loader_file).parent / found.group(1)).resolved_steps()
