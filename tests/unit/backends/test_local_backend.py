"""The local backend, with real worker processes (python -c programs, no workers/ package)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

import mlbatch.backends.local as local_module
from mlbatch.backends import UnknownBackendError, get_backend
from mlbatch.backends.local import THREAD_CAP_VARS, LocalBackend
from mlbatch.backends.slots import LocalSlots
from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobRequest, JobResult

PLUGINS_DIR = Path(local_module.__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def workers_write_into_tmp_path(tmp_path: Path) -> None:
    """These workers report through files in tmp_path: run as root, the workers run as another uid."""
    from mlbatch.backends.local.worker_user import worker_user

    user = worker_user(request(["true"]), None)
    if user is not None:
        os.chown(tmp_path, user.uid, user.gid)


class Log:
    """A log sink that keeps every line (appends are atomic, readers run in threads)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.extend(message.splitlines())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def request(command: list[str], **fields: object) -> JobRequest:
    fields.setdefault("memory_mib", 512)
    return JobRequest(name="test.step", image="mlbatch-worker:cpu", entrypoint=[], command=command, **fields)


def write_atomically(path: Path) -> str:
    """Python source that writes `text` to path without a reader ever seeing half of it."""
    return f"""
def publish(text):
    import os
    tmp = {str(path)!r} + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, {str(path)!r})
"""


def wait_for_file(path: Path, within_s: float = 10.0) -> str:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear within {within_s}s")


def gone(pid: int, within_s: float = 5.0) -> bool:
    """True once pid has exited (a zombie waiting for init to reap it counts as exited)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def kill_leftover(pid: int) -> None:
    """Cleanup after a failed assertion, so a broken build leaves no sleeping process."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def slots(tmp_path: Path) -> LocalSlots:
    return LocalSlots(capacity=4, directory=tmp_path / "slots")


def run(req: JobRequest, slots: LocalSlots, log: Log | None = None, **options: object) -> JobResult:
    return LocalBackend(log=log if log is not None else Log(), slots=slots, **options).run(req)


# ---- one worker ---------------------------------------------------------------


def test_success_streams_lines_while_the_worker_still_runs(
    tmp_path: Path, slots: LocalSlots, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # the backend itself must unbuffer the worker
    ended = tmp_path / "ended"
    first_seen_while_running: list[bool] = []
    log = Log()

    def sink(message: str) -> None:
        log(message)
        if message == "[worker] first":
            first_seen_while_running.append(not ended.exists())

    code = f"""
        import pathlib, time
        print("first")
        time.sleep(2)
        print("second")
        pathlib.Path({str(ended)!r}).write_text("x")
    """
    result = LocalBackend(log=sink, slots=slots).run(request(py(code)))

    assert result.ok
    (outcome,) = result.outcomes
    assert outcome.exit_code == 0 and outcome.signal is None and outcome.failure is None
    assert outcome.peak_rss_mib > 0
    assert first_seen_while_running == [True]
    assert log.lines.index("[worker] first") < log.lines.index("[worker] second")
    assert any(line.startswith("[worker] started pid ") for line in log.lines)
    assert any(line.startswith("[worker] finished pid ") and line.endswith(": ok") for line in log.lines)


def test_exit_65_is_bad_input_with_the_workers_reason(slots: LocalSlots) -> None:
    code = """
        import sys
        print("mlbatch-bad-input: column 'age' is missing from features", file=sys.stderr)
        sys.exit(65)
    """
    log = Log()
    result = run(request(py(code)), slots, log)

    assert not result.ok
    failure = result.first_failure
    assert failure is not None
    assert failure.failure is FailureClass.bad_input
    assert failure.exit_code == 65
    assert failure.reason == "column 'age' is missing from features"
    assert "=== mlbatch step failed ===" in log.lines
    assert "class: bad_input" in log.lines


def test_crash_is_a_code_error_with_the_last_stderr_line(slots: LocalSlots) -> None:
    result = run(request(py("raise ValueError('boom')")), slots)

    failure = result.first_failure
    assert failure is not None and failure.failure is FailureClass.code_error
    assert failure.reason == "exit code 1: ValueError: boom"
    assert failure.stderr_tail[0].startswith("Traceback")


def test_missing_executable_is_infrastructure(slots: LocalSlots) -> None:
    result = run(request(["/nonexistent/mlbatch-worker"], shard_count=2), slots)

    (outcome,) = result.outcomes
    assert outcome.failure is FailureClass.infrastructure
    assert "could not start '/nonexistent/mlbatch-worker'" in outcome.reason
    assert outcome.exit_code == 127  # what a shell answers: a command step reads it as "command not found"
    assert result.not_started == [1]


def test_python_means_the_running_interpreter(slots: LocalSlots) -> None:
    log = Log()
    result = run(request(["python", "-c", "import sys; print(sys.executable)"]), slots, log)

    assert result.ok
    assert f"[worker] {sys.executable}" in log.lines


def test_thread_caps_and_environment(tmp_path: Path, slots: LocalSlots, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "64")  # the host's value must not reach the worker
    monkeypatch.setenv("MLBATCH_TEST_INHERITED", "yes")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow:secret@db/airflow")
    out = tmp_path / "env.json"
    code = f"import json, os, pathlib; pathlib.Path({str(out)!r}).write_text(json.dumps(dict(os.environ)))"

    result = run(request(py(code), vcpu=2.5, env={"MKL_NUM_THREADS": "7", "FEATURE_FLAG": "on"}), slots)

    assert result.ok
    env = json.loads(out.read_text())
    for name in THREAD_CAP_VARS:
        assert env[name] == ("7" if name == "MKL_NUM_THREADS" else "2"), name
    assert env["FEATURE_FLAG"] == "on"
    assert env["MLBATCH_TEST_INHERITED"] == "yes"
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env
    assert env["MLBATCH_SHARD_INDEX"] == "0" and env["MLBATCH_SHARD_COUNT"] == "1"


def test_processes_left_behind_by_a_finished_worker_are_stopped(tmp_path: Path, slots: LocalSlots) -> None:
    pidfile = tmp_path / "background.pid"
    code = write_atomically(pidfile) + """
import subprocess, sys
background = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.DEVNULL)
publish(str(background.pid))
"""
    result = run(request([sys.executable, "-c", code]), slots)

    background = int(pidfile.read_text())
    try:
        assert result.ok
        assert gone(background)
    finally:
        kill_leftover(background)


# ---- memory -------------------------------------------------------------------


def test_over_budget_is_killed_as_oom_while_a_sibling_succeeds(tmp_path: Path, slots: LocalSlots) -> None:
    sibling_started = tmp_path / "sibling-started"
    sibling_code = f"""
        import pathlib, time
        pathlib.Path({str(sibling_started)!r}).write_text("x")
        time.sleep(3)
        print("sibling done")
    """
    hog_code = f"""
        import pathlib, time
        while not pathlib.Path({str(sibling_started)!r}).exists():
            time.sleep(0.05)
        hog = b"x" * (600 * 1024 * 1024)
        time.sleep(30)
    """
    sibling_log = Log()
    sibling_results: list[JobResult] = []
    sibling = threading.Thread(
        target=lambda: sibling_results.append(
            LocalBackend(log=sibling_log, slots=slots).run(request(py(sibling_code), memory_mib=200))
        )
    )
    sibling.start()
    log = Log()
    result = LocalBackend(log=log, slots=slots).run(request(py(hog_code), memory_mib=200))
    sibling.join(30)

    failure = result.first_failure
    assert failure is not None
    assert failure.failure is FailureClass.oom
    assert failure.signal == signal.SIGKILL
    assert failure.peak_rss_mib > 200
    assert failure.reason.startswith("peak ") and failure.reason.endswith("> budget 200 MiB")
    assert "class: oom" in log.lines
    assert sibling_results and sibling_results[0].ok
    assert "[worker] sibling done" in sibling_log.lines


# ---- time ---------------------------------------------------------------------


def test_timeout_kills_the_whole_tree_including_a_grandchild(tmp_path: Path, slots: LocalSlots) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = write_atomically(pidfile) + """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
publish(str(grandchild.pid))
time.sleep(60)
"""
    result = run(request([sys.executable, "-c", code], timeout_s=1.5), slots)

    grandchild = int(pidfile.read_text())
    try:
        (outcome,) = result.outcomes
        assert outcome.failure is FailureClass.timeout
        assert outcome.reason == "ran past its 1.5s timeout"
        assert outcome.signal == signal.SIGTERM
        assert gone(grandchild)
    finally:
        kill_leftover(grandchild)


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(slots: LocalSlots) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    result = run(request(py(code), timeout_s=1.0), slots, term_grace_s=0.5)

    (outcome,) = result.outcomes
    assert outcome.failure is FailureClass.timeout
    assert outcome.signal == signal.SIGKILL


def test_shards_waiting_at_the_deadline_are_not_started(tmp_path: Path) -> None:
    one_slot = LocalSlots(capacity=1, directory=tmp_path / "slots")
    result = run(request(py("import time; time.sleep(30)"), shard_count=2, timeout_s=1.0), one_slot)

    first, second = result.outcomes
    assert first.failure is FailureClass.timeout and first.reason.startswith("ran past")
    assert second.failure is FailureClass.timeout and second.reason.startswith("not started")
    assert second.exit_code is None and second.signal is None


# ---- cancel -------------------------------------------------------------------


def test_cancel_from_another_thread_kills_the_process_group(tmp_path: Path, slots: LocalSlots) -> None:
    pidfile = tmp_path / "pids"
    code = write_atomically(pidfile) + """
import os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
publish(f"{os.getpid()} {grandchild.pid}")
time.sleep(60)
"""
    backend = LocalBackend(log=Log(), slots=slots)
    results: list[JobResult] = []
    runner = threading.Thread(target=lambda: results.append(backend.run(request([sys.executable, "-c", code]))))
    runner.start()
    worker, grandchild = (int(pid) for pid in wait_for_file(pidfile).split())

    backend.cancel()
    runner.join(10)

    try:
        assert not runner.is_alive()
        (outcome,) = results[0].outcomes
        assert outcome.failure is FailureClass.infrastructure
        assert outcome.reason == "cancelled"
        assert outcome.signal == signal.SIGKILL
        assert gone(worker) and gone(grandchild)
    finally:
        kill_leftover(worker)
        kill_leftover(grandchild)


def test_an_exception_inside_run_leaves_no_worker_and_no_held_slot(tmp_path: Path) -> None:
    # Airflow's execution_timeout raises from a SIGALRM handler in the thread running the task.
    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    one_slot = LocalSlots(capacity=1, directory=tmp_path / "slots")
    pidfile = tmp_path / "worker.pid"
    code = write_atomically(pidfile) + "import os, time\npublish(str(os.getpid()))\ntime.sleep(60)\n"
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(Interrupted):
            LocalBackend(log=Log(), slots=one_slot).run(request([sys.executable, "-c", code]))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    worker = int(pidfile.read_text())
    try:
        assert gone(worker, within_s=0)
        lease = one_slot.try_acquire(1)
        assert lease is not None
        lease.release()
    finally:
        kill_leftover(worker)


def test_an_interrupted_try_leaves_no_peak_file(tmp_path: Path) -> None:
    # abandoned mid-flight, no worker exits to report its peak: the try's folder goes with the try
    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    pathfile = tmp_path / "peak.path"
    code = (write_atomically(pathfile) + "import os, time\npublish(os.environ['MLBATCH_PEAK_FILE'])\n"
            "time.sleep(60)\n")
    previous = signal.signal(signal.SIGALRM, interrupt)
    # the alarm once the worker runs (a timer could ring before it started on a busy machine)
    alarm = threading.Thread(target=lambda: (wait_for_file(pathfile), os.kill(os.getpid(), signal.SIGALRM)))
    alarm.start()
    try:
        with pytest.raises(Interrupted):
            LocalBackend(log=Log(), slots=LocalSlots(1, tmp_path / "slots")).run(request([sys.executable, "-c", code]))
    finally:
        alarm.join()
        signal.signal(signal.SIGALRM, previous)
    peak = Path(pathfile.read_text())
    assert peak.name.startswith("mlbatch-peak-")
    assert not peak.exists() and not peak.parent.exists()


def test_a_finished_try_leaves_no_folder_of_its_own(slots: LocalSlots) -> None:
    log = Log()
    result = run(request(py("import os; print('peak at', os.environ['MLBATCH_PEAK_FILE'])")), slots, log)
    assert result.ok
    [line] = [line for line in log.lines if "peak at" in line]
    peak = Path(line.split("peak at ", 1)[1])
    assert peak.parent.name.startswith("mlbatch-try-") and not peak.parent.exists()


def test_a_cancelled_backend_starts_nothing(slots: LocalSlots) -> None:
    backend = LocalBackend(log=Log(), slots=slots)
    backend.cancel()
    result = backend.run(request(py("print('should not run')"), shard_count=2))

    assert [o.failure for o in result.outcomes] == [FailureClass.infrastructure] * 2
    assert all(o.reason == "cancelled before it started" for o in result.outcomes)


def test_worker_dies_when_the_task_process_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "worker.pid"
    worker = write_atomically(pidfile) + "import os, time\npublish(str(os.getpid()))\ntime.sleep(60)\n"
    parent_code = f"""
        import sys
        sys.path.insert(0, {str(PLUGINS_DIR)!r})
        from mlbatch.backends.local import LocalBackend
        from mlbatch.backends.slots import LocalSlots
        from mlbatch.backends.jobs import JobRequest
        LocalBackend(slots=LocalSlots(capacity=2, directory={str(tmp_path / "slots")!r})).run(
            JobRequest(name="test.orphan", image="x", entrypoint=[], command=[sys.executable, "-c", {worker!r}], memory_mib=256)
        )
    """
    parent = subprocess.Popen(py(parent_code), stdout=subprocess.DEVNULL)
    try:
        worker_pid = int(wait_for_file(pidfile))
        assert not gone(worker_pid, within_s=0)
    finally:
        parent.kill()
        parent.wait()
    try:
        assert gone(worker_pid)
    finally:
        kill_leftover(worker_pid)


# ---- shards -------------------------------------------------------------------

SHARD_WRITER = """
import os, pathlib
index = os.environ["MLBATCH_SHARD_INDEX"]
pathlib.Path({out!r}, "shard-" + index).write_text(os.environ["MLBATCH_SHARD_COUNT"])
print("hello from", index)
"""


def test_every_shard_runs_with_its_index(tmp_path: Path, slots: LocalSlots) -> None:
    log = Log()
    code = SHARD_WRITER.format(out=str(tmp_path))
    result = run(request([sys.executable, "-c", code], shard_count=4), slots, log)

    assert result.ok
    assert [o.index for o in result.outcomes] == [0, 1, 2, 3]
    written = sorted(p.name for p in tmp_path.glob("shard-*"))
    assert written == ["shard-0", "shard-1", "shard-2", "shard-3"]
    assert {(tmp_path / name).read_text() for name in written} == {"4"}
    assert "[shard 2/4] hello from 2" in log.lines


def test_only_the_requested_shards_run(tmp_path: Path, slots: LocalSlots) -> None:
    code = SHARD_WRITER.format(out=str(tmp_path))
    result = run(request([sys.executable, "-c", code], shard_count=4, shard_indices=[3, 1]), slots)

    assert result.ok
    assert [o.index for o in result.outcomes] == [1, 3]
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-1", "shard-3"]


def test_no_shard_starts_after_one_failed(tmp_path: Path) -> None:
    one_slot = LocalSlots(capacity=1, directory=tmp_path / "slots")
    code = "import os, sys; sys.exit(3 if os.environ['MLBATCH_SHARD_INDEX'] == '0' else 0)"
    result = run(request(py(code), shard_count=3), one_slot)

    assert not result.ok
    assert [o.index for o in result.outcomes] == [0]
    assert result.first_failure is not None and result.first_failure.failure is FailureClass.code_error
    assert result.not_started == [1, 2]


def test_shards_never_use_more_vcpu_than_the_host_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLBATCH_LOCAL_VCPU", "2")
    monkeypatch.setenv("MLBATCH_LOCAL_SLOTS_DIR", str(tmp_path / "slots"))
    intervals = tmp_path / "intervals"
    intervals.mkdir(mode=0o777)
    intervals.chmod(0o777)  # written by the workers, whatever their uid
    code = f"""
        import os, pathlib, time
        start = time.time()
        time.sleep(0.6)
        end = time.time()
        pathlib.Path({str(intervals)!r}, os.environ["MLBATCH_SHARD_INDEX"]).write_text(f"{{start}} {{end}}")
    """
    log = Log()
    result = LocalBackend(log=log).run(request(py(code), vcpu=1, shard_count=4))

    assert result.ok
    spans = [tuple(map(float, p.read_text().split())) for p in intervals.iterdir()]
    assert len(spans) == 4
    # Sweep over start/end events; at equal times an end comes before a start.
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most == 2
    assert any("waiting for 1 vcpu of local capacity" in line for line in log.lines)


# ---- slots --------------------------------------------------------------------


def test_slots_needed_per_vcpu(tmp_path: Path) -> None:
    slots = LocalSlots(capacity=4, directory=tmp_path)
    assert [slots.slots_for(v) for v in (0.25, 1, 2.5, 16)] == [1, 1, 3, 4]


def test_capacity_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLBATCH_LOCAL_VCPU", "3")
    monkeypatch.setenv("MLBATCH_LOCAL_SLOTS_DIR", str(tmp_path / "from-env"))
    slots = LocalSlots()
    assert slots.capacity == 3
    assert slots.directory == tmp_path / "from-env" and slots.directory.is_dir()


def test_a_partial_grab_holds_nothing(tmp_path: Path) -> None:
    slots = LocalSlots(capacity=3, directory=tmp_path)
    other = LocalSlots(capacity=3, directory=tmp_path)
    with slots.try_acquire(2) as held:
        assert held.count == 2
        assert other.try_acquire(2) is None
        # The failed attempt above let go of the one free slot it had taken.
        third = other.try_acquire(1)
        assert third is not None
        third.release()
    with other.acquire(3, timeout_s=1) as everything:
        assert everything.count == 3


def test_acquire_gives_up_after_its_timeout(tmp_path: Path) -> None:
    slots = LocalSlots(capacity=1, directory=tmp_path, retry_interval_s=0.01)
    with slots.acquire(1):
        with pytest.raises(TimeoutError):
            slots.acquire(1, timeout_s=0.1)


def test_a_dead_holder_frees_its_slots(tmp_path: Path) -> None:
    holder_code = f"""
        import sys, time
        sys.path.insert(0, {str(PLUGINS_DIR)!r})
        from mlbatch.backends.slots import LocalSlots
        lease = LocalSlots(capacity=2, directory={str(tmp_path)!r}).acquire(2)
        print("held", flush=True)
        time.sleep(60)
    """
    slots = LocalSlots(capacity=2, directory=tmp_path)
    holder = subprocess.Popen(py(holder_code), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert slots.try_acquire(1) is None
    finally:
        holder.kill()
        holder.wait()
    with slots.acquire(2, timeout_s=5) as lease:
        assert lease.count == 2


# ---- request and factory ------------------------------------------------------


def test_request_validation() -> None:
    req = request(["python"], shard_count=3, shard_indices=[2, 0])
    assert req.shard_indices == [0, 2] and req.indices == [0, 2]
    assert request(["python"], shard_count=3).indices == [0, 1, 2]
    with pytest.raises(ValidationError, match="outside 0..2"):
        request(["python"], shard_count=3, shard_indices=[3])
    with pytest.raises(ValidationError, match="duplicates"):
        request(["python"], shard_count=3, shard_indices=[1, 1])
    with pytest.raises(ValidationError):
        request(["python"], vcpu=0)
    with pytest.raises(ValidationError):
        request([])
    with pytest.raises(ValidationError):
        req.vcpu = 4  # frozen: one request per try, never edited in place


def test_get_backend() -> None:
    assert isinstance(get_backend("local", log=print), LocalBackend)
    with pytest.raises(UnknownBackendError, match="unknown backend 'k8s'"):
        get_backend("k8s")


# ---- start timeout ------------------------------------------------------------


def test_a_step_that_never_gets_capacity_fails_as_infrastructure(tmp_path: Path) -> None:
    slots = LocalSlots(capacity=1, directory=tmp_path / "slots")
    marker = tmp_path / "ran"
    with slots.acquire(1.0):  # another worker holds the whole machine
        result = run(request(py(f"open({str(marker)!r}, 'w').close()"), start_timeout_s=0.5), slots)
    assert not result.ok
    outcome = result.first_failure
    assert outcome.failure is FailureClass.infrastructure
    assert "never started" in outcome.reason and "start_timeout" in outcome.reason
    assert not marker.exists()


def test_start_timeout_does_not_stop_a_step_that_started(tmp_path: Path, slots: LocalSlots) -> None:
    result = run(request(py("import time; time.sleep(1.0)"), start_timeout_s=0.3), slots)
    assert result.ok, result.failure_report()


PEAK_FROM_A_BIG_PARENT = """
import json, sys, tempfile, uuid
from pathlib import Path
ballast = b"x" * (400 * 1024 * 1024)  # the task process is big: Linux starts a child's ru_maxrss at its peak
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.local import LocalBackend
from mlbatch.backends.slots import LocalSlots
from workers import wire
root = Path(tempfile.mkdtemp())
root.chmod(0o711)  # run as root, the worker runs as another uid: it must enter the artifact root
step = wire.step_request(worker="check.memory", params={"mib": 50, "hold_seconds": 0}, inputs={},
                         output=str(root / "b" / "s" / "k"), shard_count=1)
request = JobRequest(name="b.s", image="unused", command=wire.run_command(step),
                     entrypoint=[sys.executable, "-m", "workers"],
                     memory_mib=1024, env={"MLBATCH_ARTIFACTS": str(root), "MLBATCH_TRY_NUMBER": "1"},
                     identity=uuid.uuid4().hex)
result = LocalBackend(log=lambda line: None, slots=LocalSlots(1, root / "slots")).run(request)
print(json.dumps({"ok": result.ok, "why": result.outcomes[0].reason, "peak": result.outcomes[0].peak_rss_mib, "ballast": len(ballast)}))
"""


def test_a_workers_peak_is_its_own_not_the_big_task_process_that_started_it(tmp_path: Path) -> None:
    project = PLUGINS_DIR.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS_DIR), str(project)])}
    done = subprocess.run([sys.executable, "-c", PEAK_FROM_A_BIG_PARENT], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    reported = json.loads(done.stdout.splitlines()[-1])
    assert reported["ok"], reported
    assert 50 < reported["peak"] < 300, reported  # 50 MiB and an interpreter, not the parent's 400 MiB
