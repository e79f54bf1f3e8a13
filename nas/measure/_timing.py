"""Wall-clock latency on this host, measured as robustly as a shared machine allows.

Protocol (LiteRT, 1 thread, single-sample inference):
  - every model is loaded and warmed up (3 invocations) before any timing;
  - timing is interleaved: each round visits every model once, in a fresh random order, and
    times a burst of invocations; a reference model (the first) is timed at the start of each
    round, so a round that runs on a slowed-down machine is seen as such;
  - a model's figure in a round is its burst median divided by the reference's median in that
    round (drift normalised), times the reference's best median over all rounds;
  - its final figure is the minimum over rounds (noise only ever adds time).
`repeatability()` runs the protocol twice and reports how far the two passes agree: the floor
below which no latency model can be checked on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CandidateFailed
from ._litert import median_invoke_ms, warm_invoke

__all__ = ["Wallclock", "measure_wallclock", "repeatability"]


@dataclass(frozen=True)
class Wallclock:
    ms: tuple[float | None, ...]  # per model; None when it could not be run
    reasons: tuple[str, ...]
    rounds: int


def measure_wallclock(models: list[bytes], rounds: int = 5, repeats: int = 15, budget_s: float = 0.15,
                      seed: int = 0) -> Wallclock:
    invokes, reasons = [], []
    for model in models:
        try:
            invokes.append(warm_invoke(model))
            reasons.append("")
        except CandidateFailed as exc:  # cannot load or allocate: reported, not timed
            invokes.append(None)
            reasons.append(exc.reason)
    live = [i for i, f in enumerate(invokes) if f is not None]
    if not live:
        return Wallclock((None,) * len(models), tuple(reasons), 0)
    reference = live[0]
    rng = np.random.default_rng(seed)
    ratios: dict[int, list[float]] = {i: [] for i in live}
    reference_ms = []
    for _ in range(rounds):
        ref = median_invoke_ms(invokes[reference], repeats, budget_s, 3)
        reference_ms.append(ref)
        for i in rng.permutation(live):
            ratios[int(i)].append(median_invoke_ms(invokes[int(i)], repeats, budget_s, 3) / ref)
    scale = min(reference_ms)
    ms: list[float | None] = [None] * len(models)
    for i in live:
        ms[i] = (1.0 if i == reference else min(ratios[i])) * scale
    return Wallclock(tuple(ms), tuple(reasons), rounds)


def repeatability(models: list[bytes], **kwargs) -> dict:
    """Two passes of the protocol; how often they agree within 10% and 5%, and the spread."""
    first = measure_wallclock(models, seed=1, **kwargs).ms
    second = measure_wallclock(models, seed=2, **kwargs).ms
    pairs = [(a, b) for a, b in zip(first, second) if a and b]
    diff = np.array([abs(b / a - 1.0) for a, b in pairs])
    return {"n": len(pairs), "within_10pct": float(np.mean(diff <= 0.10)) if len(diff) else None,
            "within_5pct": float(np.mean(diff <= 0.05)) if len(diff) else None,
            "median_abs_diff_pct": float(100 * np.median(diff)) if len(diff) else None,
            "p90_abs_diff_pct": float(100 * np.percentile(diff, 90)) if len(diff) else None}
