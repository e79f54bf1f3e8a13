"""Fitting the kernel-sum latency models (`nas.latency.KernelCostModel`) on whole-model measurements,
and scoring predictions against measurements.

Regressors compared (chosen per mode by cross-validation on the training split only):
    macs-linear            cost = a * MACs + b, the floor to beat
    kernel-nnls            the additive kernel model, least squares on the cost
    kernel-nnls-relative   the same, least squares on the relative error (what +/-10% measures)
"""

from __future__ import annotations

import math

import numpy as np

from ..latency import KernelCostModel, row_macs

__all__ = ["fit_mode", "fit_regressor", "nnls", "score", "REGRESSORS"]

REGRESSORS = ("macs-linear", "kernel-nnls", "kernel-nnls-relative")


def nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    w, _ = nnls(x / scale, y, maxiter=50 * x.shape[1])
    return w / scale


def fit_regressor(regressor: str, rows: list[dict[str, float]], y: np.ndarray) -> KernelCostModel:
    if regressor == "macs-linear":
        x = np.array([[row_macs(r), 1.0] for r in rows])
        w = nnls(x, y)
        return KernelCostModel(regressor, {"macs": float(w[0]), "graph:n": float(w[1])})
    names = sorted({name for row in rows for name, value in row.items() if value and name != "graph:macs"})
    x = np.array([[row.get(name, 0.0) for name in names] for row in rows])
    if regressor == "kernel-nnls-relative":
        w = nnls(x / y[:, None], np.ones_like(y))
    else:
        w = nnls(x, y)
    return KernelCostModel(regressor, {name: float(v) for name, v in zip(names, w)})


def score(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Share of predictions within +/-10% (and 5%), Spearman rank correlation, mean abs % error."""
    from scipy.stats import spearmanr

    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    error = np.abs(predicted / measured - 1.0)
    rho = float(spearmanr(predicted, measured).statistic) if len(measured) > 2 else float("nan")
    return {"n": int(len(measured)), "within_10pct": float(np.mean(error <= 0.10)),
            "within_5pct": float(np.mean(error <= 0.05)),
            "spearman": rho if not math.isnan(rho) else None, "mape_pct": float(100 * np.mean(error)),
            "max_error_pct": float(100 * np.max(error))}


def fit_mode(rows: list[dict[str, float]], y: np.ndarray, folds: int = 5, seed: int = 0) -> tuple[KernelCostModel, dict]:
    """Choose the regressor by k-fold cross-validation on (rows, y), refit it on all of them.

    Returns the model and the cross-validation scores of every regressor."""
    y = np.asarray(y, float)
    order = np.random.default_rng(seed).permutation(len(y))
    folds = max(2, min(folds, len(y)))
    cv: dict[str, dict] = {}
    for regressor in REGRESSORS:
        predicted = np.empty(len(y))
        for k in range(folds):
            test = order[k::folds]
            train = np.setdiff1d(order, test)
            model = fit_regressor(regressor, [rows[i] for i in train], y[train])
            predicted[test] = [model.predict(rows[i]) for i in test]
        cv[regressor] = score(predicted, y)
    best = max(REGRESSORS, key=lambda r: (cv[r]["within_10pct"], cv[r]["spearman"] or 0.0, -cv[r]["mape_pct"]))
    return fit_regressor(best, rows, y), cv
