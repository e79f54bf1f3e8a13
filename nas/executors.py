"""Where candidates are evaluated: in this process (default) or on a Ray cluster (`nas._ray`).

The search driver owns the sampler and the study storage; an executor only runs
`run_trial` (the footprint screen, then proxy training and measurement) for the specs the
driver submits, and hands back outcomes as they finish. Everything it returns is plain data,
so the study storage needs to be reachable from the driver alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

__all__ = ["TrialOutcome", "run_trial", "LocalExecutor", "make_executor"]


@dataclass
class TrialOutcome:
    kind: str  # "screened" | "ok" | "failed"
    verdict: Any = None  # nas.screen.Screen, for "screened"
    result: Any = None  # nas.pipeline.CandidateResult, for "ok" and "failed"
    failed_stage: str = ""
    reason: str = ""


def run_trial(spec, dataset, config, evaluate: Callable | None = None, proxy=None) -> TrialOutcome:
    """Footprint screen, then proxy training (`proxy`, else the study's) and measurement of one spec."""
    from .devices import load_device
    from .pipeline import evaluate_candidate
    from .screen import footprint_screen

    device = load_device(config.device)
    verdict = footprint_screen(spec, dataset.channels, dataset.num_classes, config.budgets, device)
    if not verdict.feasible:
        return TrialOutcome("screened", verdict=verdict)
    result = (evaluate or evaluate_candidate)(spec, dataset, proxy or config.proxy)
    if result.status != "ok":
        return TrialOutcome("failed", result=result, failed_stage=result.failed_stage, reason=result.reason)
    return TrialOutcome("ok", result=result)


class LocalExecutor:
    """Runs one trial at a time in this process."""

    capacity = 1

    def __init__(self, dataset, config, evaluate: Callable | None = None):
        self._dataset, self._config, self._evaluate = dataset, config, evaluate
        self._queue: list[tuple[int, Any, Any]] = []

    def submit(self, key: int, spec, proxy=None) -> None:
        self._queue.append((key, spec, proxy))

    def wait(self) -> Iterator[tuple[int, TrialOutcome]]:
        key, spec, proxy = self._queue.pop(0)
        yield key, run_trial(spec, self._dataset, self._config, self._evaluate, proxy)

    def evaluate_final(self, specs: list, train_config) -> list:
        from .pipeline import evaluate_candidate

        evaluate = self._evaluate or evaluate_candidate
        return [evaluate(spec, self._dataset, train_config, split="test") for spec in specs]

    def close(self, cancel: bool = False) -> None:
        self._queue.clear()


def make_executor(dataset, config, *, evaluate: Callable | None = None, ray_address: str | None = None,
                  workers: int | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0):
    """The local executor, or a Ray one when `ray_address` or `workers` is given."""
    if ray_address is None and workers is None:
        return LocalExecutor(dataset, config, evaluate)
    from ._ray import RayExecutor  # Ray is imported only here

    return RayExecutor(dataset, config, evaluate=evaluate, address=ray_address, workers=workers,
                       cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
