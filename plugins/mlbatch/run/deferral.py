"""What a step needs to go remote (what it keeps while deferred is run/step_try.StepTry)."""
from __future__ import annotations


def remote_artifact_problem(root: str, backend: str) -> str | None:
    """A container cannot read this machine's disk: remote steps need an object-store artifact root."""
    if "://" in root and not root.startswith("file://"):
        return None
    return (f"backend {backend!r} runs workers in containers that cannot see this machine's disk, "
            f"but the artifact root is {root!r}: set MLBATCH_ARTIFACTS (or [artifacts] root in mlbatch.toml) "
            "to an s3:// URI the job role can write")
