"""Trials left RUNNING by a search process that no longer runs them.

Two mechanisms, because neither covers every case:
- Optuna's heartbeats, for RDB storages (SQLite included): the driver records a heartbeat for
  every trial in flight (Optuna's own heartbeat thread runs only inside `Study.optimize`, which an
  ask/tell driver does not call), and `optuna.storages.fail_stale_trials` fails the trials whose
  heartbeat stopped longer than the grace period ago, whichever host ran them.
- The host:pid each trial records, checked on this host, for what heartbeats cannot do: a journal
  storage has no heartbeats, and a heartbeat needs its grace period to pass, while a process on
  this host that no longer exists is known dead at once (a resumed search redoes its trial now).
A driver also beats in the study itself (a study attribute `driver:<host:pid>`, every storage), so
that a second driver on a study that one is searching is refused unless it asks to join.
Everything goes through Optuna's public storage API.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings

from ._record import DUPLICATE, interrupted, trial_key

__all__ = ["HEARTBEAT_S", "GRACE_S", "worker_id", "fail_interrupted", "requeue_interrupted", "Heartbeat", "other_drivers",
           "DRIVER_ATTR", "RERUN_OF"]

RERUN_OF = "rerun_of"  # a queued trial's attribute: the interrupted trial whose spec it runs again
DRIVER_ATTR = "driver:"  # study attribute `driver:<host:pid>`: when that driver last beat (Unix time), None once it ended

HEARTBEAT_S = 10  # seconds between heartbeats of a trial in flight
GRACE_S = 60  # a trial whose last heartbeat is older than this is stale


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str | None) -> bool:
    """Whether the process that ran a trial may still be running it (unknown hosts: assume so)."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return bool(worker)  # another machine's worker: only its heartbeat can say
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid()  # our own pid: reused from the dead process that ran it


def _older_than(trial, seconds: float) -> bool:
    from datetime import datetime

    start = trial.datetime_start
    return start is None or (datetime.now() - start).total_seconds() > seconds


def fail_interrupted(study, storage) -> int:
    """Fail the RUNNING trials whose process is gone: stale heartbeats (RDB storages) and dead
    processes on this host. Returns how many this host's check failed."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a no-op where the storage has no heartbeats
    study_id = storage.get_study_id_from_name(study.study_name)
    # a trial that names no worker was asked by a driver killed before it recorded it, or, while another
    # driver searches the study, a moment ago by that driver: then it is dead only once old
    others = bool(other_drivers(study))
    stale = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
             if (not _alive(t.user_attrs["worker"]) if t.user_attrs.get("worker")
                 else not others or _older_than(t, GRACE_S))]
    for t in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "failed_stage", "interrupted")
        storage.set_trial_user_attr(trial_id, "reason", "the search process stopped during this trial")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    return len(stale)


def requeue_interrupted(study) -> int:
    """Queue the spec of every interrupted trial again (a search stopped while it ran: Ctrl-C, a killed
    driver, a lost heartbeat), so that the next asks run exactly what was in flight, as Ray Tune's
    resume restarts unfinished trials. Each once: not where a trial already reruns it, nor a spec
    (at its fidelity) that another trial has trained or is training since; a duplicate ask, which
    trains nothing, takes nothing. Returns how many were queued."""
    import optuna

    def key(t) -> str | None:
        a = t.user_attrs
        return trial_key(a["spec_hash"], a.get("proxy_epochs")) if a.get("spec_hash") else None

    trials = study.get_trials(deepcopy=False)
    fail = optuna.trial.TrialState.FAIL
    rerun = {t.user_attrs.get(RERUN_OF) for t in trials}
    taken = {key(t) for t in trials
             if not (t.state == fail and (interrupted(t.user_attrs) or t.user_attrs.get("failed_stage") == DUPLICATE))}
    queued = 0
    for t in trials:
        if t.state == fail and interrupted(t.user_attrs) and key(t) and t.params and t.number not in rerun \
                and key(t) not in taken:
            study.enqueue_trial(t.params, user_attrs={RERUN_OF: t.number, "proposed_by": f"rerun of interrupted trial {t.number}"})
            taken.add(key(t))
            queued += 1
    return queued


def other_drivers(study) -> list[tuple[str, float]]:
    """The other drivers searching `study` now: (host:pid, seconds since it last beat), for each whose
    beat is younger than GRACE_S and whose process is not known dead (a killed driver on this host is
    known dead at once; on another host its beat goes stale within GRACE_S)."""
    me, now = worker_id(), time.time()
    out = []
    for key, seen in study.user_attrs.items():
        if key.startswith(DRIVER_ATTR) and isinstance(seen, (int, float)):
            driver = key[len(DRIVER_ATTR):]
            if driver != me and now - seen < GRACE_S and _alive(driver):
                out.append((driver, max(0.0, now - seen)))
    return sorted(out)


class Heartbeat:
    """Records a heartbeat every HEARTBEAT_S seconds for each trial in flight (where the storage has
    heartbeats) and for the driver itself (every storage: `DRIVER_ATTR`), in a daemon thread; `close`
    says the driver ended."""

    def __init__(self, study, storage):
        self._storage = storage
        self._enabled = callable(getattr(storage, "record_heartbeat", None)) and bool(
            getattr(storage, "get_heartbeat_interval", lambda: None)())
        self._study_id = storage.get_study_id_from_name(study.study_name)
        self._driver = DRIVER_ATTR + worker_id()
        self._beat_driver()
        self._trials: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nas-heartbeat", daemon=True)
        self._thread.start()

    def _beat_driver(self, alive: bool = True) -> None:
        self._storage.set_study_user_attr(self._study_id, self._driver, time.time() if alive else None)

    def add(self, number: int) -> None:
        if self._enabled:
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
            self._storage.record_heartbeat(trial_id)
            with self._lock:
                self._trials.add(trial_id)

    def remove(self, number: int) -> None:
        if self._enabled:
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
            with self._lock:
                self._trials.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._lock:
                trials = list(self._trials)
            try:
                self._beat_driver()
                for trial_id in trials:
                    self._storage.record_heartbeat(trial_id)
            except Exception:  # a storage hiccup: the next beat tries again
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_S + 5)
        try:
            self._beat_driver(alive=False)
        except Exception:  # the storage itself may be what failed; the beat then goes stale
            pass
