"""Successive halving across proxy epochs, asynchronous (as ASHA), promoted by non-dominated rank.

Rungs are at epochs 1, eta, eta^2, ... below the proxy's epochs. At a rung, a trial's point is its
validation accuracy there and its cheap objectives (size, RAM, latency: known before training); it
stops only if, among the points the study's earlier trials recorded at that rung and its own, it is
dominated and at least 1/eta of the points lie in better non-dominated fronts than its own. Dominance
allows for the validation split's noise: a point dominates another only when it is no costlier in
every cheap objective and more accurate by more than two standard errors of a validation accuracy
(so after an epoch at which every model is still at chance, nothing is stopped for being larger).
So a spec that is costlier and clearly less accurate than most before it stops there, and its
converted model is measured and told as it is.

Optuna's pruners are single-objective and prune through `trial.report`, which a multi-objective
study refuses; this is ours. The rule is plain frozen data with `__call__`, so it crosses to Ray
workers and into the training loop (`nas.candidate.train_candidate(stop_rule=...)`) unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Halving", "halving_rule", "rungs_for", "ETA", "nondominated_ranks"]

ETA = 3


def rungs_for(epochs: int, eta: int = ETA) -> tuple[int, ...]:
    """Rung epochs below `epochs`: 1, eta, eta^2, ..."""
    out, r = [], 1
    while r < epochs:
        out.append(r)
        r *= eta
    return tuple(out)


def nondominated_ranks(points: Sequence[tuple[float, ...]], samples: int | None = None) -> list[int]:
    """Front index of each point (0: non-dominated), every coordinate minimised; the first is an
    error rate measured on `samples` examples, which must differ by two standard errors to count
    (None: any difference counts)."""
    def margin(a: float, b: float) -> float:
        if not samples:
            return 0.0
        p = min(max(1.0 - (a + b) / 2, 0.0), 1.0)
        return max(2.0 * math.sqrt(p * (1.0 - p) / samples), 1.0 / samples)

    def dominates(a, b):
        if not all(x <= y for x, y in zip(a[1:], b[1:])):
            return False
        if samples:
            return a[0] < b[0] - margin(a[0], b[0])
        return a[0] <= b[0] and any(x < y for x, y in zip(a, b))

    ranks = [-1] * len(points)
    left, front = set(range(len(points))), 0
    while left:
        current = {i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i)}
        for i in current:
            ranks[i] = front
        left -= current
        front += 1
    return ranks


@dataclass(frozen=True)
class Halving:
    """Stop rule of one trial: `rule(epoch, val_accuracy)` is True when it should stop at `epoch`."""

    rungs: tuple[int, ...]
    cheap: tuple[float, ...]  # this spec's cheap objectives (in the budget box)
    peers: tuple[tuple[int, float, tuple[float, ...]], ...] = ()  # (rung, accuracy, cheap) recorded by earlier trials
    val_samples: int | None = None  # validation examples behind each accuracy (for the noise allowance)
    eta: int = ETA
    min_peers: int = 2  # fewer points at a rung than this: always go on

    def __call__(self, epoch: int, accuracy: float | None) -> bool:
        if epoch not in self.rungs or accuracy is None or not math.isfinite(accuracy):
            return False
        others = [(a, c) for r, a, c in self.peers if r == epoch]
        if len(others) < self.min_peers:
            return False
        points = [(1.0 - accuracy, *self.cheap)] + [(1.0 - a, *c) for a, c in others]
        ranks = nondominated_ranks(points, self.val_samples)
        better = sum(1 for r in ranks if r < ranks[0])  # points in better fronts than this trial's
        return ranks[0] > 0 and better >= max(1, math.ceil(len(points) / self.eta))


def halving_rule(estimator, rungs: tuple[int, ...], spec, trained: Sequence[dict], corrections, val_samples: int) -> Halving:
    """The rule of `spec` among the study's `trained` rows: its cheap objectives and every earlier
    trial's rung points, over the objectives known before training (a host device's latency is
    not), in the budget box of `estimator` (`Estimator`) with its `corrections`. Like is compared
    with like: the peers' costs are estimated from their specs as the candidate's are, since their
    measured size and arena differ from an estimate by a few per cent, enough to flip "no costlier"."""
    est = estimator.estimate(spec)
    scales = estimator.scales([est], corrections, trained)
    mine, *theirs = estimator.box([est, *map(estimator.estimate_row, trained)], corrections, scales)
    known = [i for i, v in enumerate(mine) if v == v]  # NaN: predicted for no spec before training
    peers = tuple((r, float(row["learning_curve"][r - 1]), tuple(float(cheap[i]) for i in known))
                  for row, cheap in zip(trained, theirs) for r in rungs
                  if len(row.get("learning_curve") or ()) >= r and all(cheap[i] == cheap[i] for i in known))
    return Halving(rungs, tuple(float(mine[i]) for i in known), peers, val_samples)
