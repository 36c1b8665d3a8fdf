"""Which torch device a worker runs on, and a log line whenever a GPU step falls back to CPU.

The orchestrator sets MLBATCH_GPU to the step's `resources.gpu`; `auto` takes the GPU when one is
visible or asked for, and says so when it was asked for but none is visible.
"""
from __future__ import annotations

import os
from typing import Callable


def asked_gpus() -> int:
    return int(os.environ.get("MLBATCH_GPU", "0") or 0)


def choose(wanted: str, worker: str, log: Callable[[str], None] = print, cuda_available: bool | None = None,
           fallback_note: str = "running on CPU") -> str:
    """'cuda' or 'cpu' for params.device `wanted` (auto | cpu | cuda)."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    asked = asked_gpus()
    if wanted == "cuda" or (wanted == "auto" and (cuda_available or asked)):
        if cuda_available:
            return "cuda"
        why = "params.device is cuda" if wanted == "cuda" else f"the step asks for {asked} GPU"
        log(f"{worker}: GPU fallback: {why} but no GPU is visible (torch.cuda.is_available() is False); "
            f"{fallback_note}")
        return "cpu"
    return "cpu"
