"""`python -m mlbatch up`: Airflow's own UI with our DAGs, a printed password, and Ctrl-C stops it all."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _api(url: str, token: str | None = None, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_up_serves_the_ui_with_our_dags_and_stops_on_ctrl_c(tmp_path):
    home = tmp_path / "airflow_home"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags")}
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlbatch", "up", "--port", str(port)], env=env, cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        banner = ""
        for line in proc.stdout:
            banner += line
            if "Ctrl-C" in line or "exited early" in line or "did not answer" in line:
                break
        password = re.search(r"user: admin\s+password: (\S+)", banner).group(1)
        token = _api(f"http://127.0.0.1:{port}/auth/token", body={"username": "admin", "password": password})
        dag_ids: set[str] = set()
        deadline = time.monotonic() + 120
        while not {"churn_training", "churn_scoring"} <= dag_ids and time.monotonic() < deadline:
            time.sleep(3)  # the dag-processor parses the files in the background
            dags = _api(f"http://127.0.0.1:{port}/api/v2/dags", token["access_token"])
            dag_ids = {dag["dag_id"] for dag in dags["dags"]}
        assert {"churn_training", "churn_scoring"} <= dag_ids
        family = psutil.Process(proc.pid).children(recursive=True)
        assert len(family) >= 4  # standalone and its parts
    finally:
        family = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        proc.wait(timeout=60)
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert alive == []
