"""Fitting the TFLite Micro arena model that `nas.latency` predicts with (`predict_arena`): the tail's
coefficients on the tails the interpreter reported, the scratch lines on tiny models, and extensions
of a fit to tail terms it never saw.
"""

from __future__ import annotations

import numpy as np

from ..latency import ALIGNMENT, tail_terms, tail_value
from ._regress import nnls

__all__ = ["fit_arena_model", "extend_tail"]


def fit_arena_model(rows: list[dict[str, float]], arenas: list[int], tails: list[int | None]) -> dict:
    """Fit arena = tail + max(head, init) on measured arenas.

    The tail is fitted (non-negative least squares) on the tails the interpreter reported, or on
    arena minus planned head where it did not report one. `init` is what the interpreter needs
    at the head end while it allocates: records for every tensor during planning, per-channel
    scratch while a kernel prepares. It only shows on tiny models, whose minimum arena exceeds
    the final head plus tail; there it is fitted as the larger of two lines, one in the tensor
    count and one in the per-channel scratch of the layer that needs most (`init:prepare`)."""
    names = sorted({k for r in rows for k in tail_terms(r)}) + ["const"]
    x = np.array([[r.get(k, 1.0 if k == "const" else 0.0) for k in names] for r in rows])
    y = np.array([(t if t is not None else a - r["head"]) - r.get("variable_bytes", 0.0)
                  for r, a, t in zip(rows, arenas, tails)], float)
    tail = {k: float(v) for k, v in zip(names, nnls(x, y))}
    # where the arena exceeds head + tail, it was sized by what allocation needed on the way
    gap = [i for i, (r, a, t) in enumerate(zip(rows, arenas, tails)) if t is not None and a > r["head"] + t + ALIGNMENT]
    return {"tail": tail, "init": _fit_max_of_lines([rows[i] for i in gap], [arenas[i] - tails[i] for i in gap])}


_INIT_BRANCHES = ("tensors", "init:prepare")


def _fit_max_of_lines(rows: list[dict[str, float]], need: list[float], rounds: int = 5) -> list[dict[str, float]]:
    """need ~ max over branches of (a * feature + b): assign each sample to the branch that
    explains it, refit each branch on its samples, repeat."""
    if not rows:
        return []
    need_arr = np.array(need, float)
    owner = np.zeros(len(rows), int)
    for i, r in enumerate(rows):  # start: the channel branch where a wide per-channel layer exists
        owner[i] = 1 if r.get("init:prepare", 0.0) * 8 > r["tensors"] * 48 else 0
    lines: list[dict[str, float]] = []
    for _ in range(rounds):
        lines = []
        for b, feature in enumerate(_INIT_BRANCHES):
            mine = owner == b
            if mine.sum() < 2:
                continue
            x = np.array([[rows[i][feature], 1.0] for i in np.flatnonzero(mine)])
            a, c = nnls(x, need_arr[mine])
            lines.append({"feature": feature, "slope": float(a), "const": float(c)})
        if not lines:
            return []
        predicted = np.array([[ln["slope"] * r[ln["feature"]] + ln["const"] for ln in lines] for r in rows])
        new_owner = np.array([_INIT_BRANCHES.index(lines[j]["feature"]) for j in predicted.argmax(axis=1)])
        if (new_owner == owner).all():
            break
        owner = new_owner
    return lines


def extend_tail(fitted: dict, rows: list[dict[str, float]], tails: list[int]) -> dict:
    """`fitted` (`fit_arena_model`'s tail and init lines) with a coefficient for every tail term of
    `rows` it has none for (operators of a type its fit never met, ...), fitted by non-negative
    least squares on what its own terms leave of each measured tail; its terms and init lines are
    kept as they are, so the models it was fitted on are priced as before.

    The rows are small generated models, each carrying a graph's fixed overhead (its subgraph and
    allocator records) that `fitted`'s own terms, fitted on whole models without an intercept,
    spread over their operators. An intercept is fitted with the new terms and left out of the
    result, so the new terms price an operator's own records, not that overhead again (with it
    kept in them, held-out real files with many such operators came out 10-16% over)."""
    known = fitted["tail"]
    new = sorted({k for r in rows for k, v in tail_terms(r).items() if v and k not in known})
    out = {**fitted, "tail": dict(known)}
    if not new or not rows:
        return out
    x = np.array([[r.get(k, 0.0) for k in new] + [1.0] for r in rows])
    left = np.array([t - r.get("variable_bytes", 0.0) - tail_value(r, known) for r, t in zip(rows, tails)], float)
    out["tail"].update({k: float(v) for k, v in zip(new, nnls(x, left)[:-1])})
    return out
