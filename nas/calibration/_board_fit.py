"""One latency model for every board in the catalog, fitted jointly on all published rows.

A model's cost on a profile's base device (its core's Arm instruction count under TFLite Micro with
CMSIS-NN's kernels, `_mcu.base_device`) is split by kernel class: `conv` (k x k convolutions),
`pointwise` (1 x 1), `dwconv`, `fc`, and `other` (pooling, element-wise, reshapes, the interpreter
between operators). A profile p prices class c at exp(theta[p, c] + s[p]) / clock milliseconds per
base instruction:

    theta[p, c] = theta0[c] + u[runtime, c] + v[runtime version, c]     how a runtime scales a class
    s[p]        = alpha[runtime] + gamma[core] + w[runtime, core] + e[p] - beta * log(clock)
                                                      how a board scales a runtime

`other` takes the geometric mean of the four main classes' factors: the four reference models spend
under 10% of their instructions there (ResNet-8's additions), so the rows cannot tell it apart. u, v, w and e are
shrunk towards zero (ridge penalties, stated as prior spreads in log units below), so a runtime
version or a board with few rows borrows from the rest, and a board predicted from its clock and
core class alone (e[p] = 0, its own rows left out) is what leave-one-board-out measures.
Least squares on log time (relative error).
"""

from __future__ import annotations

import math

import numpy as np

from ..latency import KERNEL_CLASSES, MAIN_CLASSES

__all__ = ["PRIOR_SD", "RESIDUAL_SD", "SHAPE_SD", "EXACT_SHAPE", "JointFit", "fit_joint"]

#: Prior spreads (log units) of the shrunk terms, against a residual spread of RESIDUAL_SD.
PRIOR_SD = {"u": 0.4, "v": 0.3, "w": 0.3, "e": 0.15, "beta": 0.3}
RESIDUAL_SD = 0.15
#: Prior spread (log units) of a class's common factor against conv's: host proportions kept within ~e^2.
SHAPE_SD = 0.7
#: Runtimes that run the very kernels their base device counts (TFLite Micro with its reference kernels
#: or CMSIS-NN's): their classes keep the counts' proportions, one scale for all (cycles per instruction).
EXACT_SHAPE = ("tflm", "tflm-cmsisnn")
_TINY = 1e-3  # keeps the free terms' common shift (theta0 against alpha) determined


class JointFit:
    """The fitted terms, and per-profile milliseconds per host instruction by class."""

    def __init__(self, profiles, refs: dict[str, dict[str, dict[str, float]]], bases: dict[str, str]):
        self.profiles = list(profiles)
        self.refs = refs  # base (the counted build a profile is priced from) -> reference model -> class counts
        self.bases = bases  # profile name -> its base
        self.runtimes = sorted({p.runtime for p in self.profiles})
        self.versions = sorted({p.family_version for p in self.profiles})
        self.cores = sorted({p.core for p in self.profiles})
        self.pairs = sorted({(p.runtime, p.core) for p in self.profiles})
        self.index: dict[tuple, int] = {}
        for c in MAIN_CLASSES:
            self._add(("theta0", c))
            for r in self.runtimes:
                if r not in EXACT_SHAPE:
                    self._add(("u", r, c))
            for v in self.versions:
                if v.split(":")[0] not in EXACT_SHAPE:
                    self._add(("v", v, c))
        for r in self.runtimes:
            self._add(("alpha", r))
        self._add(("beta",))
        for core in self.cores:
            if core != "Cortex-M4":  # the reference core class: gamma = 0
                self._add(("gamma", core))
        for pair in self.pairs:
            self._add(("w", *pair))
        for p in self.profiles:
            self._add(("e", p.name))
        self.x = np.zeros(len(self.index))

    def _add(self, key: tuple) -> None:
        self.index[key] = len(self.index)

    def _terms(self, profile, own: bool = True) -> tuple[list[list[int]], list[int]]:
        """Parameter indices of theta[p, c] per main class and of s[p]; `own=False` drops e[p]."""
        if profile.runtime in EXACT_SHAPE:
            theta: list[list[int]] = [[] for _ in MAIN_CLASSES]
        else:
            theta = [[self.index[("theta0", c)], self.index[("u", profile.runtime, c)],
                      self.index[("v", profile.family_version, c)]] for c in MAIN_CLASSES]
        scale = [self.index[("alpha", profile.runtime)], self.index[("w", profile.runtime, profile.core)]]
        if ("gamma", profile.core) in self.index:
            scale.append(self.index[("gamma", profile.core)])
        if own:
            scale.append(self.index[("e", profile.name)])
        return theta, scale

    def class_factors(self, profile, x: np.ndarray | None = None, own: bool = True) -> dict[str, float]:
        """ms per host instruction, per kernel class, on `profile`."""
        x = self.x if x is None else x
        theta_idx, scale_idx = self._terms(profile, own)
        theta = np.array([x[i].sum() for i in theta_idx])
        scale = x[scale_idx].sum() - x[self.index[("beta",)]] * math.log(profile.clock_mhz)
        main = np.exp(theta + scale) / profile.clock_mhz
        out = dict(zip(MAIN_CLASSES, map(float, main)))
        out["other"] = float(np.exp(theta.mean() + scale) / profile.clock_mhz)
        return out

    def counts(self, profile, ref: str) -> dict[str, float]:
        """A reference model's instructions per class on the build `profile` is priced from."""
        return self.refs[self.bases[profile.name]][ref]

    def predict(self, profile, counts: dict[str, float], x: np.ndarray | None = None, own: bool = True) -> float:
        factors = self.class_factors(profile, x, own)
        return float(sum(factors[c] * counts.get(c, 0.0) for c in KERNEL_CLASSES))

    def _design(self, rows: list[tuple]) -> tuple:
        """Incidence matrices: theta[:, c] = A[c] @ x, s = S @ x; counts; log clock; log published."""
        n, m = len(rows), len(self.index)
        A = np.zeros((len(MAIN_CLASSES), n, m))
        S = np.zeros((n, m))
        counts = np.zeros((n, len(KERNEL_CLASSES)))
        for k, (profile, ref, _) in enumerate(rows):
            theta_idx, scale_idx = self._terms(profile)
            for c, idx in enumerate(theta_idx):
                A[c, k, idx] = 1.0
            S[k, scale_idx] = 1.0
            S[k, self.index[("beta",)]] = -math.log(profile.clock_mhz)
            counts[k] = [self.counts(profile, ref)[c] for c in KERNEL_CLASSES]
        clock = np.log([p.clock_mhz for p, _, _ in rows])
        published = np.log([ms for _, _, ms in rows])
        return A, S, counts, clock, published

    def fit(self, rows: list[tuple], x0: np.ndarray | None = None) -> np.ndarray:
        """Fit on `rows` of (profile, reference model, published ms); returns the parameter vector."""
        A, S, counts, clock, published = self._design(rows)
        weights = np.full(len(self.index), _TINY)
        # theta0's classes stay near the host's proportions (prior SHAPE_SD): the reference models mix
        # depthwise and pointwise alike, so without it the fit may move all of one into the other
        shape = np.zeros((len(MAIN_CLASSES) - 1, len(self.index)))
        for k, c in enumerate(MAIN_CLASSES[1:]):
            shape[k, self.index[("theta0", c)]], shape[k, self.index[("theta0", MAIN_CLASSES[0])]] = 1.0, -1.0
        shape *= RESIDUAL_SD / SHAPE_SD
        for key, i in self.index.items():
            if key[0] in PRIOR_SD:
                weights[i] = RESIDUAL_SD / PRIOR_SD[key[0]]
        n_main = len(MAIN_CLASSES)

        def parts(x):
            theta = np.einsum("cnm,m->nc", A, x)
            main = np.exp(theta) * counts[:, :n_main]
            other = np.exp(theta.mean(axis=1)) * counts[:, n_main]
            return main, other, main.sum(axis=1) + other

        def fun(x):
            _, _, total = parts(x)
            return np.concatenate([np.log(total) + S @ x - clock - published, weights * x, shape @ x])

        def jac(x):
            main, other, total = parts(x)
            share = (main + other[:, None] / n_main) / total[:, None]
            rows_jac = np.einsum("nc,cnm->nm", share, A) + S
            return np.vstack([rows_jac, np.diag(weights), shape])

        from scipy.optimize import least_squares

        start = self.x if x0 is None else x0
        return least_squares(fun, start, jac=jac, method="lm").x



def fit_joint(profiles, refs: dict, bases: dict[str, str] | None = None) -> dict:
    """Fit every row; then leave each row out (leave-one-model-out), each reference model out of every
    profile at once (`unseen_*`: the error of a model no board has run, as a search candidate is),
    each board out (all its profiles under one runtime: predicted from clock and core class), and
    price energy by profile power.

    `refs` holds each reference model's instructions per kernel class; with `bases` (profile name ->
    key of `refs`), per counted build: {base: {reference model: counts}}, each profile priced from its own."""
    if bases is None:
        refs, bases = {"": refs}, {p.name: "" for p in profiles}
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # ~250 solves of 200 x 200: threads only contend (100x slower)
        return _fit_joint(profiles, refs, bases)


def _fit_joint(profiles, refs: dict, bases: dict[str, str]) -> dict:
    model = JointFit(profiles, refs, bases)
    rows = [(p, ref, ms) for p in model.profiles for ref, ms in p.latency_ms.items()]
    # Start from a per-profile scale so the solver begins near the answer.
    for p in model.profiles:
        scales = [math.log(ms * p.clock_mhz / sum(model.counts(p, ref).values())) for ref, ms in p.latency_ms.items()]
        model.x[model.index[("e", p.name)]] = float(np.mean(scales))
    model.x = model.fit(rows)
    out: dict[str, dict] = {p.name: {"refs": {}} for p in model.profiles}
    for p in model.profiles:
        for ref, ms in p.latency_ms.items():
            held = [r for r in rows if not (r[0] is p and r[1] == ref)]
            x = model.fit(held, model.x)
            out[p.name]["refs"][ref] = {"published_ms": ms, "fitted_ms": model.predict(p, model.counts(p, ref)),
                                        "loo_ms": model.predict(p, model.counts(p, ref), x)}
    # A model no board has run (what every search candidate is): each reference model left out of
    # every profile at once, then predicted on each.
    unseen: dict[str, list[float]] = {p.name: [] for p in model.profiles}
    for ref in sorted({r for p in model.profiles for r in p.latency_ms}):
        held = [r for r in rows if r[1] != ref]
        x = model.fit(held, model.x)
        for p in model.profiles:
            if ref in p.latency_ms:
                predicted = model.predict(p, model.counts(p, ref), x)
                out[p.name]["refs"][ref]["unseen_ms"] = predicted
                unseen[p.name].append(abs(predicted / p.latency_ms[ref] - 1))
    boards: dict[tuple, list] = {}
    for p in model.profiles:
        boards.setdefault((p.part, p.runtime), []).append(p)
    lobo: dict[str, dict] = {}
    for (part, runtime), members in boards.items():
        others = [p for p in model.profiles if p.runtime == runtime and p.part != part]
        same_core = [p for p in model.profiles if p.core == members[0].core and p.part != part]
        if not others or not same_core:
            for p in members:
                lobo[p.name] = {"note": f"no other board runs {runtime}" if not others
                                else f"no other {p.core} board in the catalog"}
            continue
        held = [r for r in rows if r[0] not in members]
        x = model.fit(held, model.x)
        for p in members:
            errors = [model.predict(p, model.counts(p, ref), x, own=False) / ms - 1 for ref, ms in p.latency_ms.items()]
            lobo[p.name] = {"mean_abs_error_pct": 100 * float(np.mean(np.abs(errors))),
                            "errors_pct": [round(100 * e, 1) for e in errors]}
    for p in model.profiles:
        entry = out[p.name]
        errors = [abs(r["loo_ms"] / r["published_ms"] - 1) for r in entry["refs"].values()]
        entry.update(ms_per_instruction=model.class_factors(p), loo_mean_pct=100 * float(np.mean(errors)),
                     loo_max_pct=100 * float(np.max(errors)), unseen_mean_pct=100 * float(np.mean(unseen[p.name])),
                     unseen_max_pct=100 * float(np.max(unseen[p.name])), lobo=lobo[p.name], **_energy(p, entry["refs"]))
    return {"profiles": out, "terms": {"/".join(map(str, k)): float(model.x[i]) for k, i in model.index.items()},
            "rows": len(rows)}


def _energy(profile, refs: dict[str, dict]) -> dict:
    """Energy = the profile's mean power (published uJ / published ms, geometric mean) x predicted ms.
    Two errors: the power model's own (`power_loo_*`: each model's power against the mean of the
    others'), and `energy_loo_*`, the others' power x the left-out latency prediction against the
    published energy (a model the other boards had run). A model no board has run carries the
    unseen latency error compounded with the power error (`Device` states that one)."""
    pairs = {ref: (uj, refs[ref]["published_ms"]) for ref, uj in profile.energy_uj.items() if ref in refs}
    if not pairs:
        return {"power_mw": None, "energy_loo_mean_pct": None, "energy_loo_max_pct": None,
                "power_loo_mean_pct": None, "power_loo_max_pct": None}
    log_power = {ref: math.log(uj / ms) for ref, (uj, ms) in pairs.items()}
    power = math.exp(float(np.mean(list(log_power.values()))))
    errors, power_errors = [], []
    for ref, (uj, _) in pairs.items():
        rest = [v for k, v in log_power.items() if k != ref]
        if rest:
            errors.append(abs(math.exp(float(np.mean(rest))) * refs[ref]["loo_ms"] / uj - 1))
            power_errors.append(abs(math.exp(float(np.mean(rest)) - log_power[ref]) - 1))
    return {"power_mw": power,
            "energy_loo_mean_pct": 100 * float(np.mean(errors)) if errors else None,
            "energy_loo_max_pct": 100 * float(np.max(errors)) if errors else None,
            "power_loo_mean_pct": 100 * float(np.mean(power_errors)) if power_errors else None,
            "power_loo_max_pct": 100 * float(np.max(power_errors)) if power_errors else None}
