"""Where the project lives on this machine: the root of the checkout (workers/, dags/, mlbatch.toml).

A module of its own, importing nothing of mlbatch, so settings and run/paths can both
use it without importing each other.
"""
from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
