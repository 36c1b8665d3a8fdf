"""Enforce a step's metric gate before its output is published (latest.json, asset event).

Checked on every commit and on every cache hit alike: an output that failed its gate stays in
the cache under its key, and reusing it must fail the same way, never slip into latest.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlbatch.backends.failures import FailureClass
from mlbatch.run.step_errors import FailureDetails, StepFailedFast

if TYPE_CHECKING:
    from mlbatch.spec.models import ResolvedStep

NEXT_STEP = ("Find out why the output got worse (its data, params or code). It stays cached under its key, so a "
             "re-run with the same inputs fails the gate again; to accept it anyway, change the gate in the "
             "spec and clear the task.")


def enforce_gate(step: ResolvedStep, batch_id: str, key: str, manifest: dict[str, Any], log: Any) -> None:
    """Return when the step has no gate or passes it; else fail it as bad_input, or skip it (on_fail: skip)."""
    gate = step.gate
    if gate is None:
        return
    reason = gate.verdict(manifest.get("metrics") or {})
    if reason is None:
        log.info("gate passed: %s = %s (%s)", gate.metric, manifest["metrics"][gate.metric], gate.rule)
        return
    held = (f"not published: latest.json stays on the previous output and batches scheduled after "
            f"{batch_id}.{step.name} do not run (output {key} stays cached)")
    if gate.on_fail == "skip":
        log.info("gate not met, skipping this step and the steps after it: %s; %s", reason, held)
        raise AirflowSkipException(f"gate not met: {reason}")
    log.error("gate failed: %s; %s", reason, held)
    raise StepFailedFast(FailureDetails(FailureClass.bad_input, f"gate failed: {reason}; {held}", next_step=NEXT_STEP))
