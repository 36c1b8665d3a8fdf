"""The code part of a cache key covers the worker's own package: its change is a miss, others' are not."""
from __future__ import annotations

import pytest

from mlbatch.cache import keys as cache
from tests.worker_packages import write_distribution
from workers.registry import WORKERS

CATALOGUE = """
    from workers.info import WorkerInfo
    W = WorkerInfo("team.w", "team_code.work:w", None)
"""


@pytest.fixture
def team_package(tmp_path, monkeypatch):
    folder = write_distribution(tmp_path, "team-code", {"team.w": "team_code.catalogue:W"},
                                {"team_code.__init__": "", "team_code.catalogue": CATALOGUE,
                                 "team_code.work": "def w(request):\n    return None\n"})
    monkeypatch.syspath_prepend(str(folder))
    WORKERS.refresh()
    yield folder / "team_code"
    WORKERS.refresh()


def version(worker: str) -> str:
    cache.source_digest.cache_clear()  # a task process computes it once; here the code changes between calls
    return cache.code_version(None, worker)


def test_a_package_worker_is_versioned_by_its_own_package(team_package):
    before = version("team.w")
    assert before.startswith("team_code:") and before != version("check.noop")
    (team_package / "work.py").write_text("def w(request):\n    return 1\n")
    assert version("team.w") != before


def test_a_change_outside_the_package_is_no_miss(team_package, tmp_path, monkeypatch):
    before, builtin = version("team.w"), version("check.noop")
    monkeypatch.setattr(cache, "PROJECT_ROOT", tmp_path / "elsewhere")  # other workers/ code
    (tmp_path / "elsewhere" / "workers").mkdir(parents=True)
    (tmp_path / "elsewhere" / "workers" / "x.py").write_text("changed = True\n")
    assert version("team.w") == before and version("check.noop") != builtin


def test_built_in_workers_keep_the_workers_source_and_a_digest_still_wins(team_package):
    assert version("train.gbdt") == cache.code_version() and version("train.gbdt").startswith("workers:")
    digest = "sha256:" + "a" * 64
    assert cache.code_version(f"team/image@{digest}", "team.w") == f"image:{digest}"
