"""A full disk and a source that cannot be reached for a moment are the infrastructure's fault: retried."""
from __future__ import annotations

import errno
import subprocess
import sys
import textwrap

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from mlbatch.backends.failures import FailureClass, classify_exit
from workers.errors import TRANSIENT_EXIT_CODE, BadInput, Transient, disk_full, transient_cause
from workers.tabular import table


def run_worker_main(body: str) -> subprocess.CompletedProcess:
    """workers.__main__ with its step replaced by `body` (a real process, real exit code and stderr)."""
    code = "import sys, workers.__main__ as main\ndef step(_request):\n"
    code += textwrap.indent(textwrap.dedent(body), "    ")
    code += '\nmain._run = step\nsys.exit(main.main(["run", "--request", "{}"]))\n'
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_full_disk_exits_75_and_is_classed_infrastructure_naming():
    done = run_worker_main("""
        with open("/dev/full", "w") as f:  # the kernel answers ENOSPC, as a full disk does
            f.write("x" * 10)
            f.flush()
    """)
    assert done.returncode == TRANSIENT_EXIT_CODE, done.stderr
    failure, reason = classify_exit(done.returncode, None, stderr_tail=done.stderr.splitlines())
    assert failure is FailureClass.infrastructure and failure.retryable
    assert reason.startswith("disk full at /")


def test_disk_full_names_the_file_it_could_not_write():
    error = OSError(errno.ENOSPC, "No space left on device", "/data/out/part-0.parquet")
    assert disk_full(error) == "disk full at /data/out/part-0.parquet"
    assert transient_cause(RuntimeError("wrapped")) is None
    try:
        try:
            raise error
        except OSError as inner:
            raise RuntimeError("could not save the model") from inner
    except RuntimeError as outer:
        assert disk_full(outer) == "disk full at /data/out/part-0.parquet"


def test_enospc_from_any_program_is_infrastructure():
    tail = ["cp: error writing '/data/out.bin': No space left on device"]
    failure, reason = classify_exit(1, None, stderr_tail=tail)
    assert failure is FailureClass.infrastructure and "/data/out.bin" in reason


def test_other_errors_stay_code_errors():
    done = run_worker_main("raise ValueError('a bug')")
    assert done.returncode == 1
    assert classify_exit(1, None, stderr_tail=done.stderr.splitlines())[0] is FailureClass.code_error


@pytest.mark.parametrize("error", [
    EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com/b/k"),
    ClientError({"Error": {"Code": "SlowDown", "Message": "Reduce your request rate"}}, "GetObject"),
    ClientError({"Error": {"Code": "503", "Message": "Service Unavailable"}}, "HeadObject"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError("read timed out"),
])
def test_transient_read_errors_are_recognised(error):
    assert transient_cause(error)


@pytest.mark.parametrize("error", [
    ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject"),
    ValueError("could not convert string to float"),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
])
def test_errors_of_the_file_itself_are_not_transient(error):
    assert transient_cause(error) is None


def test_a_source_that_cannot_be_reached_is_retried_not_bad_input(monkeypatch):
    # The exact call a network failure interrupts: existence check of the source on S3.
    def unreachable(uri):
        assert uri == "s3://tables/churn.csv"
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com/tables/churn.csv")

    monkeypatch.setattr(table.artifacts, "exists", unreachable)
    with pytest.raises(Transient, match="source s3://tables/churn.csv could not be read: EndpointConnectionError"):
        table.read_source("s3://tables/churn.csv")


def test_a_corrupt_source_is_still_bad_input(tmp_path):
    source = tmp_path / "t.parquet"
    source.write_bytes(b"not parquet at all")
    with pytest.raises(BadInput, match="is unreadable"):
        table.read_source(str(source))
