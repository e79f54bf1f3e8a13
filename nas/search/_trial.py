"""One trial as an executor runs it, locally or on a Ray worker: the footprint screen, then proxy
training and measurement. What it returns is plain, frozen data: the driver alone touches the
study storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from ..candidate import CandidateResult
from ._screen import Screen

__all__ = ["TrialOutcome", "run_trial", "run_final"]


@dataclass(frozen=True)
class TrialOutcome:
    kind: Literal["screened", "ok", "failed"]
    verdict: Screen | None = None  # for "screened"
    result: CandidateResult | None = None  # for "ok" and "failed"
    failed_stage: str = ""
    reason: str = ""


def run_trial(spec, dataset, config, evaluate: Callable | None = None, proxy=None, stop_rule=None) -> TrialOutcome:
    """Footprint screen, then proxy training (`proxy`, else the study's) and measurement of one spec.
    `stop_rule` (successive halving) reaches the real pipeline; a caller's own `evaluate` trains as it likes."""
    from ..candidate import evaluate_candidate
    from ..latency import load_device
    from ._screen import footprint_screen

    device = load_device(config.device)
    verdict = footprint_screen(spec, dataset.channels, dataset.num_classes, config.budgets, device)
    if not verdict.feasible:
        return TrialOutcome("screened", verdict=verdict)
    if evaluate is None:
        result = evaluate_candidate(spec, dataset, proxy or config.proxy, stop_rule=stop_rule)
    else:
        result = evaluate(spec, dataset, proxy or config.proxy)
    if result.status != "ok":
        return TrialOutcome("failed", result=result, failed_stage=result.failed_stage, reason=result.reason)
    return TrialOutcome("ok", result=result)


def run_final(spec, dataset, train_config, evaluate: Callable | None = None) -> CandidateResult:
    """Final retraining of one spec, measured on the test split."""
    from ..candidate import evaluate_candidate

    return (evaluate or evaluate_candidate)(spec, dataset, train_config, split="test")
