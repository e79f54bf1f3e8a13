"""What the driver reads of its study on every ask, kept in memory (issue 37).

A proposal needs the trained trials' records, the exact footprints of specs rejected after
conversion, the specs already asked and whether queued trials wait. Reading them from the storage
on every ask reads every trial in flight too (Optuna caches finished trials only): with 64 workers
that is 64 trials' records per ask, most of the driver's time. The driver is the one that tells its
trials, so it adds each to the ledger as it tells it (the record read back once, as stored). Alone on
its study it never reads it again (`REFRESH_S`: a full read of 2,000 trials stalls an ask for a second
on SQLite); once it sees another driver (`_driver`: every ask checks) it reads it before every ask.
"""

from __future__ import annotations

import bisect
import time

from ._record import asked_specs, failed_candidate, interrupted
from ._stale import worker_id

__all__ = ["Ledger", "REFRESH_S"]

REFRESH_S = float("inf")  # a lone driver's ledger is never read again: the driver told all it holds


class Ledger:
    """The study as proposals read it: `trained` rows (as `trained_rows` gives them), `footprints`
    (rows of footprint rejections with their exact size and arena), `taken` spec hashes (every asked
    spec but an interrupted trial's), `asked` (`asked_specs`: what duplicates a trial) and `waiting`
    (queued trials not yet asked)."""

    def __init__(self, study, refresh_s: float = REFRESH_S):
        self.study, self.refresh_s = study, refresh_s
        self.read()

    def read(self) -> None:
        """Everything from the storage, as a resume would see it."""
        import optuna

        trials = self.study.get_trials(deepcopy=False)
        self.trained: list[dict] = []
        self.footprints: list[dict] = []
        self.taken: set[str] = set()
        self.waiting = self.failed = 0
        self.running: dict[str, int] = {}
        self.flying: list[tuple[str, dict]] = []  # (worker, record) of the other workers' trials in flight
        me = worker_id()
        for t in trials:
            a = t.user_attrs
            if t.state == optuna.trial.TrialState.WAITING:
                self.waiting += 1
            elif t.state == optuna.trial.TrialState.COMPLETE:
                self._add(t.number, a)
            elif failed_candidate(t):  # as `count_trials` counts them
                self.failed += 1
            elif t.state == optuna.trial.TrialState.RUNNING and a.get("worker") not in (None, me):
                self.running[a["worker"]] = self.running.get(a["worker"], 0) + 1
                if "spec" in a:
                    self.flying.append((a["worker"], {"spec": a["spec"], "spec_hash": a.get("spec_hash")}))
            if "spec_hash" in a and not (t.state == optuna.trial.TrialState.FAIL and interrupted(a)):
                self.taken.add(a["spec_hash"])
        self.asked = asked_specs(trials)
        self._read_at = time.monotonic()

    def refresh(self) -> bool:
        """Read the study again if `refresh_s` passed since the last read; whether it did."""
        if time.monotonic() - self._read_at < self.refresh_s:
            return False
        self.read()
        return True

    def in_flight(self, workers) -> list:
        """The specs of the trials in flight on `workers` (other drivers'), as last read."""
        from ..spec import ArchSpec

        return [ArchSpec.from_json(r["spec"]) for worker, r in self.flying if worker in workers]

    def note_ask(self, spec_hash: str, queued: bool) -> None:
        """A trial was asked for `spec_hash`; `queued`: it was a trial waiting in the queue."""
        self.taken.add(spec_hash)
        if queued and self.waiting:
            self.waiting -= 1

    def told_complete(self, trial) -> None:
        """`trial` was told complete (trained or rejected): its record, read back as stored."""
        self._add(trial.number, trial.user_attrs)

    def _add(self, number: int, attrs: dict) -> None:
        rows = self.trained if not attrs.get("screened") else self.footprints \
            if attrs.get("screen_stage") == "footprint" and attrs.get("size_bytes") and attrs.get("peak_ram_bytes") else None
        if rows is not None:  # in trial order, as the storage gives them
            bisect.insort(rows, {"trial": number, **attrs}, key=lambda r: r["trial"])
