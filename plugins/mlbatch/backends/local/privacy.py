"""Keep a local worker out of its task process's memory and environment.

The task process holds what a worker must not see (the metadata DB URL, connections with
their webhooks): removing them from the worker's environment is not enough when the worker
can read /proc/<parent>/environ. Two kernel rules close most of that door:

- the task process is made non-dumpable (PR_SET_DUMPABLE 0): its /proc files then belong to
  root, so a worker of the same ordinary user can no longer open its environ, mem or maps;
- the worker starts without CAP_SYS_PTRACE (dropped from the bounding, inheritable,
  permitted and effective sets before exec, so exec cannot give it back to root): a worker
  running as root can neither trace the task process nor read its memory.

A worker running as root may still read the environ of its task process on some kernels, so a
root task process runs its workers as another uid (worker_user.py). Other processes of the same
user as the worker stay readable to it: the local backend runs trusted code only, Airflow should
run as an ordinary user, and untrusted code belongs in a container.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Callable

PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAP_SYS_PTRACE = 19
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


_LIBC = _libc()


def hide_from_children() -> None:
    """Make this process non-dumpable (idempotent): a worker cannot read its environ or memory."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def without_ptrace(then: Callable[[], None] | None, switch_to: tuple[int, int] | None = None
                   ) -> Callable[[], None] | None:
    """A preexec_fn that drops CAP_SYS_PTRACE from the child for good, then runs `then`.

    With `switch_to` (uid, gid), a root parent's child then becomes that user with no supplementary
    groups and no_new_privs (no set-uid program can make it root again). The bounding set is
    shrunk first, while the child may still do it; `then` runs last, as a uid switch clears a
    parent-death signal set before it.

    Everything is resolved here, in the parent: between fork and exec nothing may import,
    allocate much or look anything up.
    """
    if _LIBC is None:
        return then
    prctl, capget, capset = _LIBC.prctl, _LIBC.capget, _LIBC.capset
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    keep = ~(1 << CAP_SYS_PTRACE) & 0xFFFFFFFF

    def drop_ptrace() -> None:
        prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0)  # fails harmlessly without CAP_SETPCAP
        if capget(ctypes.byref(header), data) == 0:
            data[0].effective &= keep
            data[0].permitted &= keep
            data[0].inheritable &= keep
            capset(ctypes.byref(header), data)
        if switch_to is not None:
            uid, gid = switch_to
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if then is not None:
            then()

    return drop_ptrace
