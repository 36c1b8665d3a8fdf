"""What a local step's own code can reach of its task process, tried as an attacker would.

A task process holding Airflow's secrets in its environment (the metadata DB URL, a Slack
connection) runs one local step: a script that first tries to read the task process's
/proc/<ppid>/environ and memory, to find a secret in its own environment, and to write beside
its output in the artifact root, then runs the real worker (check.noop). Run as root (as CI
runs), the worker runs as another uid: every read is refused and the step still commits.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from workers.artifacts import commit_step, read_step_manifest

PROJECT = Path(__file__).resolve().parents[2]
SECRETS = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:s3cr3t-pw@127.0.0.1/airflow",
           "AIRFLOW_CONN_SLACK_ALERTS": "slackwebhook://:T0-webhook-token@hooks.slack.com"}

ATTACK = r'''
import json, os, runpy, sys
tried = {"uid": os.getuid(), "ppid": os.getppid()}
def attempt(name, action):
    try:
        tried[name] = action()
    except Exception as error:
        tried[name] = f"refused: {type(error).__name__}"
def read(part):
    with open(f"/proc/{os.getppid()}/{part}", "rb") as handle:
        return handle.read(1 << 16).decode("latin-1")
def write_beside(path):
    with open(path, "w") as handle:
        handle.write("planted")
    return "done"
attempt("environ", lambda: read("environ"))
attempt("mem", lambda: read("mem"))
attempt("own_env", lambda: {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW")})
attempt("write_artifact_root", lambda: write_beside(os.path.join(os.environ["MLBATCH_ARTIFACTS"], "planted")))
attempt("write_home", lambda: write_beside(os.path.join(os.environ["HOME"], "cache-probe")))
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
tried.update(no_new_privs=status["NoNewPrivs"].strip(), cap_bounding=status["CapBnd"].strip())
print("ATTACK " + json.dumps(tried), flush=True)
sys.argv = ["workers", *sys.argv[1:]]
runpy.run_module("workers", run_name="__main__", alter_sys=True)
'''

# The task process: Airflow's secrets in its environment, one local step whose code attacks first.
TASK = """
import json, os, sys, uuid
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.local import LocalBackend
from mlbatch.backends.slots import LocalSlots
from workers import wire

attack, root, output = sys.argv[1], sys.argv[2], sys.argv[3]
step = wire.step_request(worker="check.noop", params={}, inputs={}, output=output, shard_count=1)
request = JobRequest(name="victim.step", image="unused", command=wire.run_command(step),
                     entrypoint=[sys.executable, "-c", attack], memory_mib=512, identity=uuid.uuid4().hex,
                     env={"MLBATCH_ARTIFACTS": root, "MLBATCH_TRY_NUMBER": "1", "PYTHONPATH": os.environ["PYTHONPATH"]})
lines = []
result = LocalBackend(log=lambda m: lines.extend(m.splitlines()), slots=LocalSlots(1, root + "/../slots")).run(request)
print(json.dumps({"pid": os.getpid(), "ok": result.ok, "log": lines}))
"""


def test_a_local_worker_cannot_read_its_task_process_secrets_and_still_commits(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    output = root / "victim" / "step" / uuid.uuid4().hex[:8]
    env = {**os.environ, **SECRETS, "PYTHONPATH": os.pathsep.join([str(PROJECT / "plugins"), str(PROJECT)])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(TASK), ATTACK, str(root), str(output)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout.strip().splitlines()[-1])
    log = "\n".join(task["log"])
    tried = json.loads(next(line.split("ATTACK ", 1)[1] for line in task["log"] if "ATTACK " in line))
    assert tried["ppid"] == task["pid"], log
    assert tried["environ"] == "refused: PermissionError", log
    assert tried["mem"] == "refused: PermissionError", log
    assert not set(tried["own_env"]) & set(SECRETS), log
    assert not any(secret in json.dumps(tried) + log for secret in SECRETS.values())
    assert task["ok"], log
    assert commit_step(str(output), 1) == read_step_manifest(str(output))
    if os.geteuid() == 0:  # the separate uid: not root, no way back, and only its own folder writable
        assert tried["uid"] != 0 and tried["no_new_privs"] == "1", log
        assert int(tried["cap_bounding"], 16) & (1 << 19) == 0  # no CAP_SYS_PTRACE, even through set-uid
        assert tried["write_artifact_root"] == "refused: PermissionError", log
        assert tried["write_home"] == "done", log  # its caches have a home
        assert (output / "shard-00000").stat().st_uid == tried["uid"]
        assert not (root / "planted").exists()
