"""Where candidates are evaluated: in this process (default) or on a Ray cluster (`_ray`).

The search driver owns the sampler and the study storage; an executor only runs `run_trial` (the
footprint screen, then proxy training and measurement) for the specs the driver submits, and
hands back outcomes as they finish. Everything it returns is plain data, so the study storage
needs to be reachable from the driver alone.

Faults are the executor's to report (`_faults`) and the driver's to record, once per trial. The
driver gives the trial timeout at every `wait`, counted from when each trial could start.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ._trial import TrialOutcome, run_final, run_trial

__all__ = ["LocalExecutor", "make_executor"]

class LocalExecutor:
    """Runs one trial at a time in this process. A trial here cannot be stopped from outside it, so
    a `wait` timeout is not enforced: its progress is on screen and Ctrl-C stops the search (resumable)."""

    capacity = 1

    def __init__(self, dataset, config, evaluate: Callable | None = None):
        self._dataset, self._config, self._evaluate = dataset, config, evaluate
        self._queue: list[tuple[int, Any, Any]] = []

    def submit(self, key: int, spec, proxy=None, stop_rule=None) -> None:
        self._queue.append((key, spec, proxy, stop_rule))

    def wait(self, timeout_s: float | None = None) -> Iterator[tuple[int, TrialOutcome]]:
        key, spec, proxy, stop_rule = self._queue.pop(0)
        yield key, run_trial(spec, self._dataset, self._config, self._evaluate, proxy, stop_rule)

    def evaluate_final(self, specs: list, train_config, dataset=None) -> list:
        """Final results in the order of `specs`, on `dataset` (the executor's, with a teacher's outputs) or its own."""
        return [run_final(spec, dataset or self._dataset, train_config, self._evaluate) for spec in specs]

    def close(self, cancel: bool = False) -> None:
        self._queue.clear()


def make_executor(dataset, config, *, evaluate: Callable | None = None, ray_address: str | None = None,
                  workers: int | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0):
    """The local executor, or a Ray one when `ray_address` or `workers` is given."""
    if ray_address is None and workers is None:
        return LocalExecutor(dataset, config, evaluate)
    from ._ray import RayExecutor  # Ray itself is imported only when a RayExecutor starts

    return RayExecutor(dataset, config, evaluate=evaluate, address=ray_address, workers=workers,
                       cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
