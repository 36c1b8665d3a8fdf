"""A local worker cannot read its task process's secrets through /proc.

A task process of an ordinary user (the recommended way) keeps its environment and memory from
its workers by being non-dumpable; a root task process runs its workers as another uid.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlbatch.backends.local import privacy

SECRET = "postgresql://airflow:s3cr3t-pw@127.0.0.1/airflow"

# The task process: holds a secret in its environment, runs one local step whose code tries to
# read the parent's environ and memory, and prints what the step reported.
TASK = """
import json, sys
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.local import LocalBackend
from mlbatch.backends.slots import LocalSlots

STEP = '''
import json, os
found = {"ppid": os.getppid()}
for part in ("environ", "mem"):
    try:
        with open(f"/proc/{os.getppid()}/" + part, "rb") as f:
            found[part] = f.read(1 << 20).decode("latin-1")
    except OSError as exc:
        found[part] = type(exc).__name__
status = open("/proc/self/status").read()
found["cap_eff"] = [line.split()[1] for line in status.splitlines() if line.startswith("CapEff")][0]
found["cap_bnd"] = [line.split()[1] for line in status.splitlines() if line.startswith("CapBnd")][0]
print("REPORT " + json.dumps(found), flush=True)
'''
lines = []
request = JobRequest(name="t.step", image="mlbatch-worker:cpu", entrypoint=[], memory_mib=256,
                     command=[sys.executable, "-c", STEP])
backend = LocalBackend(log=lambda m: lines.extend(m.splitlines()), slots=LocalSlots(capacity=2, directory=sys.argv[1]))
result = backend.run(request)
report = [line.split("REPORT ", 1)[1] for line in lines if "REPORT " in line][0]
failed = [str(f) for f in result.failures]
print(json.dumps({"report": json.loads(report), "failed": failed, "pid": __import__("os").getpid()}))
"""


def run_task(tmp_path: Path) -> dict:
    env = {**os.environ, "MLBATCH_DB_URL": SECRET, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(TASK), str(tmp_path / "slots")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_cannot_read_its_parents_memory(tmp_path):
    outcome = run_task(tmp_path)
    report = outcome["report"]
    assert outcome["failed"] == [] and report["ppid"] == outcome["pid"]
    assert report["mem"] == "PermissionError"
    # as root too: the worker then runs as another uid (worker_user.py)
    assert report["environ"] == "PermissionError" and SECRET not in json.dumps(report)


# The same two calls spawn() makes, in a task process of an ordinary user (the system python:
# the project's venv may sit in a folder only root can read; privacy.py needs only ctypes).
UNPRIVILEGED_TASK = """
import importlib.util, json, os, subprocess, sys
spec = importlib.util.spec_from_file_location("privacy", sys.argv[1])
privacy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(privacy)
privacy.hide_from_children()
reader = ("import os\\ntry:\\n print(open(f'/proc/{os.getppid()}/environ').read())\\n"
          "except OSError as e:\\n print(type(e).__name__)")
done = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True,
                      preexec_fn=privacy.without_ptrace(None))
print(json.dumps({"uid": os.getuid(), "read": done.stdout.strip(), "err": done.stderr}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="needs root to switch users")
def test_a_worker_of_an_unprivileged_task_process_cannot_read_its_environment():
    privacy_py = Path(privacy.__file__).resolve()
    done = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                           "/usr/bin/python3", "-c", UNPRIVILEGED_TASK, str(privacy_py)],
                          env={"PATH": "/usr/bin:/bin", "MLBATCH_DB_URL": SECRET}, capture_output=True, text=True,
                          cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["uid"] == 65534
    assert outcome["read"] == "PermissionError", outcome


def test_the_worker_has_no_ptrace_capability_even_as_root(tmp_path):
    report = run_task(tmp_path)["report"]
    ptrace = 1 << 19
    assert int(report["cap_eff"], 16) & ptrace == 0
    if os.geteuid() == 0:  # only root may shrink the bounding set
        assert int(report["cap_bnd"], 16) & ptrace == 0
