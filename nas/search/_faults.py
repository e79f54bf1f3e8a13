"""Faults at scale, as outcomes: what an executor reports when a trial cannot give a result.

A worker lost twice on one trial (`lost_worker`: Ray retries a task once) and a trial with no result
within the trial timeout (`timed_out`) come back to the driver as failed outcomes, once per trial, and
are recorded like any failure. The timeout is the driver's (`TrialTimeout`: given, or automatic once
trials have trained and set a scale); the executor enforces it at every `wait`.
"""

from __future__ import annotations

import json

from ._trial import TrialOutcome

__all__ = ["TrialTimeout", "lost_worker", "timed_out", "AUTO_TIMEOUT_FACTOR", "AUTO_TIMEOUT_FLOOR_S", "AUTO_TIMEOUT_AFTER"]

AUTO_TIMEOUT_FACTOR = 4.0  # the automatic timeout: this many times the longest trained trial so far ...
AUTO_TIMEOUT_FLOOR_S = 300.0  # ... and never under this (a fresh worker imports TensorFlow and receives the data)
AUTO_TIMEOUT_AFTER = 3  # trained trials before the automatic timeout starts: the first ones set its scale


def lost_worker(cause: str, final: bool = False) -> TrialOutcome:
    """The outcome of a trial whose worker died, and died again on the one retry."""
    during = " during final training" if final else ""
    return TrialOutcome("failed", failed_stage="worker", reason=f"the worker died{during}, also on the retry: {cause}")


def timed_out(seconds: float) -> TrialOutcome:
    """The outcome of a trial with no result `seconds` after it started (hung, or its node lost
    without a word); its worker is stopped and it is not retried: a spec that hung once may hang again."""
    return TrialOutcome("failed", failed_stage="timeout",
                        reason=f"no result {seconds:.0f} s after it started (the trial timeout, "
                               f"--trial-timeout-s); its worker was stopped")


class TrialTimeout:
    """Each trial's timeout, in seconds from when it could start: `seconds` as given, or
    (None) automatic: AUTO_TIMEOUT_FACTOR times the longest trained trial seen, at least
    AUTO_TIMEOUT_FLOOR_S, once AUTO_TIMEOUT_AFTER trials have trained (none before: nothing sets a scale)."""

    def __init__(self, seconds: float | None = None, rows=()):
        self.fixed = seconds
        self.longest, self.seen = 0.0, 0
        for row in rows:  # the study's trained rows, as a resume reads them
            self.observe(row.get("timings_s"))

    def observe(self, timings) -> None:
        """A trained trial's stage timings (a dict, or its JSON as the record stores it)."""
        if isinstance(timings, str):
            timings = json.loads(timings)
        if timings:
            self.longest, self.seen = max(self.longest, float(sum(timings.values()))), self.seen + 1

    def seconds(self) -> float | None:
        if self.fixed is not None:
            return self.fixed
        if self.seen < AUTO_TIMEOUT_AFTER:
            return None
        return max(AUTO_TIMEOUT_FLOOR_S, AUTO_TIMEOUT_FACTOR * self.longest)
