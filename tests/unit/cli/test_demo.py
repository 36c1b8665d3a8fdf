"""`mlbatch demo` shows the lines that matter of a run's log, whole."""
from __future__ import annotations

from mlbatch.cli.demo import progress_line


def test_a_long_failure_reason_is_shown_to_its_end():
    columns = ", ".join(f"column_{i}" for i in range(40)) + ", defaulted"
    reason = f"reason: source /data/loans.csv has no label column 'default' (params.label); columns: {columns}"
    line = f"2026-11-30T10:00:00.000000Z [error    ] {reason} [mlbatch.step] loc=operator.py:120\n"
    assert progress_line(line) == reason
    assert progress_line(line).endswith("defaulted")


def test_other_lines_are_left_to_the_log_file():
    assert progress_line("2026-11-30T10:00:00Z [info     ] Filling up the DagBag [airflow] loc=x\n") is None


def test_a_batch_airflow_cannot_find_is_shown():
    line = "airflow.exceptions.AirflowException: Dag 'my_batch' could not be found; either it does not exist or it failed to parse.\n"
    assert "could not be found" in progress_line(line)
