"""Trials left RUNNING by a process that no longer exists: found by the worker id each trial
records (host:pid), marked failed (`interrupted`) so their work is redone."""

from __future__ import annotations

import os
import socket

__all__ = ["worker_id", "fail_interrupted"]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str | None) -> bool:
    """Whether the process that ran a trial may still be running it (unknown hosts: assume so)."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return bool(worker)  # another machine's worker: only it can say
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid()  # our own pid: reused from the dead process that ran it


def fail_interrupted(study) -> int:
    """Trials left RUNNING by a killed process on this host: mark them failed, so their work is redone."""
    import optuna

    stale = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
             if not _alive(t.user_attrs.get("worker"))]
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "failed_stage", "interrupted")
        study._storage.set_trial_user_attr(t._trial_id, "reason", "the search process stopped during this trial")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    return len(stale)
