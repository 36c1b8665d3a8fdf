"""The plugin is registered once: by the installed package's entry point, with the project's plugins
folder (and its mlbatch_plugin.py) also present, as in this repository's own Airflow."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _plugins(plugins_folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder)}
    return subprocess.run([AIRFLOW, "plugins", "--output", "json"], env=env, capture_output=True, text=True,
                          timeout=180, cwd=PROJECT)


def test_entry_point_and_plugins_folder_give_one_plugin_and_no_import_error():
    listed = _plugins(PROJECT / "plugins")
    assert listed.returncode == 0, listed.stderr
    mine = [p for p in json.loads(listed.stdout) if p["name"] == "mlbatch"]
    assert len(mine) == 1, mine
    assert "already registered" not in listed.stdout + listed.stderr
    [plugin] = mine
    assert "mlbatch.ui.plugin" in json.dumps(plugin)  # from the entry point, not the folder's shim
    assert plugin["fastapi_apps"] and plugin["external_views"]


def test_the_folder_shim_defines_the_plugin_only_without_the_entry_point():
    code = ("import importlib.metadata as m, runpy, sys; real = m.entry_points;"
            "m.entry_points = lambda **kw: [] if kw.get('group') == 'airflow.plugins' else real(**kw);"
            "found = runpy.run_path(sys.argv[1]); print('MlbatchPlugin' in found)")
    shim = str(PROJECT / "plugins" / "mlbatch_plugin.py")
    without = subprocess.run([sys.executable, "-c", code, shim], capture_output=True, text=True, timeout=120)
    assert without.stdout.strip().splitlines()[-1] == "True", without.stderr
    installed = subprocess.run([sys.executable, "-c", "import runpy, sys; print('MlbatchPlugin' in runpy.run_path(sys.argv[1]))",
                                shim], capture_output=True, text=True, timeout=120)
    assert installed.stdout.strip().splitlines()[-1] == "False", installed.stderr
