"""The embedded backend: every shard of a step runs as its own capped OS process.

Nothing of the worker runs inside the calling (Airflow task) process: each shard
is a child in its own process group, so a crash, a memory blow-up or a kill takes
down that worker and nothing else, and the whole tree of a shard can be stopped
with one killpg.

Caps:
- vcpu: admission through LocalSlots (host-wide, across task processes) plus
  thread caps (OMP_NUM_THREADS & co) so numeric libraries do not spawn a thread
  per core of the machine.
- memory: the watchdog (watchdog.py) samples the resident memory of each shard's
  process tree and SIGKILLs the group once it is over budget.
- time: one deadline for the whole try; past it every process group gets SIGTERM,
  then SIGKILL after a grace period (mlbatch.backends.shard_loop).
- parent death: PR_SET_PDEATHSIG makes a worker die with the task process, so a
  task killed with SIGKILL leaves no orphan worker behind (spawn.py).

Not used locally: request.image (argv runs with this host's interpreter and
packages) and GPU partitioning (a worker sees every GPU of the host).

Modules: backend (LocalBackend: run, cancel), runner (LocalRunner: the ShardRunner the
shared loop drives), spawn (one shard's process, env and log pumps), watchdog (memory),
outcome (exit -> classified outcome), groups (the process groups, signalled and reaped
under one lock).
"""
from __future__ import annotations

from mlbatch.backends.local.backend import LocalBackend
from mlbatch.backends.local.spawn import worker_argv, worker_env
from mlbatch.backends.threads import THREAD_CAP_VARS

__all__ = ["LocalBackend", "THREAD_CAP_VARS", "worker_argv", "worker_env"]
