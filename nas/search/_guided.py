"""The default strategy, "guided" (`--strategy optuna` means it): what a spec costs is known
before it trains (size, arena and latency on the device, about a millisecond a spec) and only its
accuracy costs a training, so training goes to the specs those free figures make promising.

1. A pool of `POOL_SIZE` specs is drawn from the space (seeded) and screened analytically once;
   only specs within every budget are ever proposed, so no training is spent on rejections.
2. Start-up: the first trained trials are a space-filling design over that feasible pool (greedy
   maximin distance in a standardised descriptor: parameters, MACs, activation peak, latency,
   resolution, depth), not random draws.
3. Then a surrogate, a Gaussian process on the same descriptors fitted on the study's trained trials
   (proxy accuracy; a trial stopped by successive halving counts at its rung plus the median gain
   of the trials that went on), predicts every pool spec's accuracy with its uncertainty, and the
   spec with the largest expected hypervolume improvement over the study's feasible front is trained
   next: accuracy as error, each cheap objective over its budget, calibrated by what trained trials
   measured. Every second pick maximises the expected improvement of the best feasible accuracy
   instead, so the accurate end of the front is pushed as well as its cheap end.

Optuna has no sampler that can be told objective values known before a trial runs, and its
samplers draw one trial at a time; so the driver starts each proposal as an Optuna trial itself (its
parameters given), and the study, its storage, constraints and every report stay Optuna's. A trial
in flight counts as a point at its predicted accuracy (kriging believer), so parallel workers are
not given the same region twice. The cost of a proposal stays flat as a study grows: the surrogate
sees at most `GP_ROWS` trials, a large study's proposal weighs `SCORED` specs of the pool (a share
drawn anew each ask, so every spec is weighed over a few asks), and only specs that could extend
the front are integrated.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..spec import ArchSpec
from ._estimate import Estimate, Estimator, fill_unknown
from ._screen import analytic_screen
from ._study import StudyConfig

__all__ = ["GuidedProposer", "Proposal", "POOL_SIZE", "POOL_ROUNDS", "startup_trials", "expected_hv_improvement",
           "fit_surrogate"]

POOL_SIZE = 3000  # specs drawn and screened once per search (about 3 s)
POOL_ROUNDS = 5  # draws of POOL_SIZE at most: another is drawn when every feasible spec of the pool was tried
QMC_POINTS = 2 ** 13  # quasi-random points in the budget box for the hypervolume integrals
ACCURACY_EVERY = 2  # every second surrogate pick maximises expected improvement of the best accuracy
# The proposer's cost stays flat as a study grows (issue 37: at 2,000 trials and 64 workers the driver
# must propose in well under 100 ms):
GP_ROWS = 256  # the surrogate is fitted on at most this many trained trials: the best half, and the rest spread over the study
GP_REFIT_EVERY = 16  # past GP_ROWS / 4 rows, its kernel is re-optimised (from where it was) every this many new rows
REFIT_STEPS = 10  # ... with at most this many L-BFGS-B iterations, on at most REFIT_ROWS of its rows
REFIT_ROWS = GP_ROWS // 2
FRESH_GROWTH = 1.25  # up to GP_ROWS / 4 rows, the kernel is optimised afresh when the rows grew by this factor
SCORED = 1024  # past GP_ROWS / 4 trained trials, each proposal weighs this many specs of the pool, drawn anew each ask
OPTIMISM = 3.0  # EHVI is computed only for specs whose accuracy at mean + 3 sd would not be dominated by the front


def startup_trials(trials: int) -> int:
    """Trained trials before the surrogate proposes: a quarter of the study, 3 to 8."""
    return max(3, min(8, trials // 4))


@dataclass(frozen=True)
class Proposal:
    params: dict
    spec: ArchSpec
    source: str  # "guided start-up (space-filling)" | "guided surrogate (EHVI ...)" ...
    predicted_accuracy: float | None = None


class GuidedProposer:
    def __init__(self, config: StudyConfig, space, device, in_channels: int, num_classes: int,
                 pool_size: int = POOL_SIZE):
        self.config, self.space, self.device = config, space, device
        self.in_channels, self.num_classes, self.pool_size = in_channels, num_classes, pool_size
        self.estimator = Estimator(config, space, device, in_channels, num_classes)
        self.n_startup = startup_trials(config.trials)
        self.pool: dict[str, tuple[dict, Estimate]] = {}
        self.rounds = 0  # pools drawn so far
        self._kernel: tuple[int, object] | None = None  # (rows it was fitted on, the fitted kernel)
        self._fresh_at = 0  # rows at the last fit afresh
        self._draw()

    def _draw(self) -> None:
        """Draw the next pool round (seeded by the study's seed and the round) and keep its specs
        estimated within every budget; the descriptors' standardisation follows the whole pool."""
        rng = np.random.default_rng(self.config.seed if self.rounds == 0 else [self.config.seed, self.rounds])
        self.rounds += 1
        seen: set[str] = set()
        for _ in range(self.pool_size):
            params: dict = {}
            spec = self.space.build(lambda name, opts: params.setdefault(name, opts[int(rng.integers(len(opts)))]))
            if spec.hash in self.pool or spec.hash in seen:
                continue
            seen.add(spec.hash)
            if analytic_screen(spec, self.in_channels, self.num_classes, self.config.budgets, self.device).feasible:
                self.pool[spec.hash] = (params, self.estimator.estimate(spec))
        descriptors = np.array([e.descriptor for _, e in self.pool.values()]) if self.pool else np.zeros((0, 1))
        self._mean = descriptors.mean(0) if len(descriptors) else 0.0
        self._std = np.where(descriptors.std(0) > 1e-9, descriptors.std(0), 1.0) if len(descriptors) else 1.0

    def pool_summary(self) -> str:
        """The pool in words: how many specs were drawn and how many are estimated within budget."""
        return f"{len(self.pool)} of {self.rounds * self.pool_size:,} drawn specs"

    def standardized(self, estimates: Sequence[Estimate]) -> np.ndarray:
        width = len(self._mean) if np.ndim(self._mean) else 0
        rows = np.array([e.descriptor for e in estimates], dtype=float).reshape(len(estimates), width)
        return (rows - self._mean) / self._std

    def propose(self, trained: Sequence[dict], taken: set[str], pending: Sequence[ArchSpec] = (),
                corrections: Mapping[tuple[str, str], np.ndarray] | None = None) -> Proposal | None:
        """The next spec to train, given the study's trained rows (records with `spec`, `accuracy`,
        measured costs), the spec hashes already asked (`taken`) and the specs in flight; a new pool
        round is drawn when every spec of the pool was asked, and None comes back when `POOL_ROUNDS`
        rounds hold none left (the search then ends as planned). `corrections`: the cheap
        objectives' calibration (`Estimator.corrections`, which the driver fits on every exact size and
        arena, footprint rejections included); default: fitted on `trained`."""
        free = [(h, p, e) for h, (p, e) in self.pool.items() if h not in taken]
        while not free and self.rounds < POOL_ROUNDS:
            self._draw()
            free = [(h, p, e) for h, (p, e) in self.pool.items() if h not in taken]
        if not free:
            return None
        known = [self.estimator.estimate_row(r) for r in trained]
        flying = [self.estimator.estimate(s) for s in pending]
        if corrections is None:
            corrections = self.estimator.corrections(trained)
        estimates = [e for _, _, e in free]
        scales = self.estimator.scales(estimates + known, corrections, trained)
        cheap_all = self.estimator.box(estimates, corrections, scales)
        # what the calibrated estimates put inside every budget (the analytic bounds alone are loose);
        # an objective the device predicts nothing for (host latency) does not exclude
        inside = np.all(np.isnan(cheap_all) | (cheap_all <= 1.0), axis=1)
        if inside.any():
            free, cheap = [f for f, ok in zip(free, inside) if ok], cheap_all[inside]
        else:
            cheap = cheap_all
        if len(trained) > GP_ROWS // 4 and len(free) > SCORED:  # a large study: a seeded share of the pool per ask
            rng = np.random.default_rng([self.config.seed, len(trained) + len(flying)])
            chosen = np.sort(rng.choice(len(free), SCORED, replace=False))
            free, cheap = [free[i] for i in chosen], cheap[chosen]
        candidates = [e for _, _, e in free]
        if len(trained) < self.n_startup:
            index = _farthest(self.standardized(candidates), self.standardized(known + flying))
            _, params, est = free[index]
            return Proposal(params, est.spec, f"guided start-up (space-filling over {len(free)} specs estimated within budget)")
        accuracy = surrogate_targets(trained)
        model = self._surrogate(self.standardized(known), accuracy)
        mu, sigma = model(self.standardized(candidates))
        feasible = [i for i, r in enumerate(trained) if self.estimator.admits(r)]
        told = np.array([float(r["accuracy"]) for r in trained])  # what the study holds, not the projection
        costs = self.estimator.measured_box(trained, scales)
        cheap = fill_unknown(cheap, costs)
        front = np.column_stack([1.0 - told[feasible], fill_unknown(costs[feasible], costs)])
        if flying:
            fly_mu, _ = model(self.standardized(flying))
            fly_cheap = fill_unknown(self.estimator.box(flying, corrections, scales), costs)
            front = np.vstack([front, np.column_stack([1.0 - fly_mu, fly_cheap])])
        inside = np.all(cheap <= 1.0, axis=1)
        pick = len(trained) + len(flying) - self.n_startup  # from the study, so a resumed search goes on alike
        if pick % ACCURACY_EVERY == ACCURACY_EVERY - 1 and inside.any():
            best = float(told[feasible].max()) if feasible else 0.0
            score = np.where(inside, _expected_improvement(mu, sigma, best), -np.inf)
            how = f"guided surrogate (expected improvement of the best accuracy {best:.3f})"
        else:
            score = expected_hv_improvement(1.0 - mu, sigma, cheap, front, self.config.seed)
            how = "guided surrogate (expected hypervolume improvement)"
            if not np.any(score > 0):  # no spec could extend the front: the most accurate predicted
                score, how = np.where(inside, mu, -np.inf) if inside.any() else mu, "guided surrogate (highest predicted accuracy)"
        index = int(np.argmax(score))
        _, params, est = free[index]
        return Proposal(params, est.spec, f"{how}, predicted accuracy {mu[index]:.3f} +- {sigma[index]:.3f}",
                        float(mu[index]))


    def _surrogate(self, x: np.ndarray, y: np.ndarray):
        """`fit_surrogate` on at most `GP_ROWS` rows (`_gp_rows`), at a cost that stays flat as a study
        grows, with no ask much slower than the others. Its kernel is optimised afresh (with restarts)
        at the first proposal (of a resumed search too) and whenever the rows grew by FRESH_GROWTH
        since, up to `GP_ROWS / 4` rows; in between, a new row gets `REFIT_STEPS` steps from where
        the kernel was; past `GP_ROWS / 4` rows, those steps come every `GP_REFIT_EVERY` new rows
        (on `REFIT_ROWS` of the rows: the cost is cubic) and the kernel is kept in between."""
        keep, n = _gp_rows(y, GP_ROWS), len(y)
        if self._kernel is None or (n <= GP_ROWS // 4 and n >= FRESH_GROWTH * self._fresh_at):
            model = fit_surrogate(x[keep], y[keep], self.config.seed)
            kernel = getattr(model, "kernel", None)
            self._kernel, self._fresh_at = ((n, kernel), n) if kernel is not None else (None, 0)
            return model
        kernel = self._kernel[1]
        optimise = n != self._kernel[0] if n <= GP_ROWS // 4 else n - self._kernel[0] >= GP_REFIT_EVERY
        if optimise and len(keep) > REFIT_ROWS:
            some = keep[_gp_rows(y[keep], REFIT_ROWS)]
            # a constant subset fits no kernel: keep the one there was
            kernel = getattr(fit_surrogate(x[some], y[some], self.config.seed, kernel=kernel), "kernel", kernel)
            optimise, self._kernel = False, (n, kernel)
        model = fit_surrogate(x[keep], y[keep], self.config.seed, kernel=kernel, optimise=optimise)
        if optimise:
            self._kernel = (n, getattr(model, "kernel", kernel))
        return model


def _gp_rows(y: np.ndarray, limit: int) -> np.ndarray:
    """Indices of at most `limit` rows for the surrogate: every row if there are so few, else the
    `limit // 2` most accurate (where the front is) and the rest spread evenly over the others in
    study order (the landscape everywhere else)."""
    if len(y) <= limit:
        return np.arange(len(y))
    best = np.argsort(-y, kind="stable")[:limit // 2]
    rest = np.setdiff1d(np.arange(len(y)), best)
    spread = rest[np.linspace(0, len(rest) - 1, limit - len(best)).round().astype(int)]
    return np.sort(np.concatenate([best, spread]))


def surrogate_targets(trained: Sequence[dict]) -> np.ndarray:
    """The proxy accuracy each trained trial would have reached: its accuracy, or, if successive
    halving stopped it at rung r, its validation accuracy there plus the median gain from r to the end
    of the trials that were not stopped (computed once per rung: a study of thousands stays cheap)."""
    gains: dict[int, float] = {}
    out = []
    for row in trained:
        rung = row.get("halved_at")
        if not rung:
            out.append(float(row["accuracy"]))
            continue
        if rung not in gains:
            seen = [r["accuracy"] - r["learning_curve"][rung - 1] for r in trained
                    if not r.get("halved_at") and len(r.get("learning_curve") or ()) >= rung]
            gains[rung] = float(np.median(seen)) if seen else 0.0
        curve = row.get("learning_curve") or ()
        at_rung = curve[rung - 1] if len(curve) >= rung else row["accuracy"]
        out.append(float(min(1.0, at_rung + gains[rung])))
    return np.array(out, dtype=float)


def fit_surrogate(x: np.ndarray, y: np.ndarray, seed: int, kernel=None, optimise: bool = True):
    """A Gaussian process (Matern 5/2, one length scale, a noise term) on standardised descriptors:
    a function from descriptors to (mean, standard deviation) of accuracy, with the fitted kernel as
    its `kernel` attribute. `kernel`: one fitted before, whose hyperparameters are the start of one
    optimisation (`optimise`), or kept as they are."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    if len(y) < 2 or float(np.std(y)) < 1e-9:
        level = float(np.mean(y)) if len(y) else 0.5
        return lambda q: (np.full(len(q), level), np.full(len(q), 0.2))
    if kernel is None:
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length_scale=2.0, length_scale_bounds=(0.3, 50.0), nu=2.5) \
            + WhiteKernel(1e-2, (1e-5, 0.5))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=seed)
    elif optimise:  # from where it was: a few quasi-Newton steps, not a run to convergence (an ask's cost)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0, random_state=seed,
                                      optimizer=_few_steps)
    else:
        gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes on a handful of points
        gp.fit(x, y)

    def predict(q: np.ndarray):
        mu, sd = gp.predict(q, return_std=True)
        return np.clip(mu, 0.0, 1.0), np.maximum(sd, 1e-3)

    predict.kernel = gp.kernel_
    return predict


def _few_steps(objective, theta, bounds):
    """sklearn's optimizer contract, with L-BFGS-B capped at `REFIT_STEPS` iterations: a kernel refitted
    from the one before is near its optimum, and a full run costs a 64-worker driver most of an ask."""
    from scipy.optimize import minimize

    result = minimize(objective, theta, method="L-BFGS-B", jac=True, bounds=bounds, options={"maxiter": REFIT_STEPS})
    return result.x, result.fun


def _farthest(candidates: np.ndarray, chosen: np.ndarray) -> int:
    """Greedy maximin: the candidate farthest from every chosen point (the most central one first)."""
    if len(chosen) == 0:
        return int(np.argmin(np.linalg.norm(candidates - np.median(candidates, axis=0), axis=1)))
    distance = np.linalg.norm(candidates[:, None, :] - chosen[None, :, :], axis=2).min(axis=1)
    return int(np.argmax(distance))


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)


def _expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
    z = (mu - best) / sigma
    return sigma * (z * _normal_cdf(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))


def expected_hv_improvement(error_mu: np.ndarray, error_sigma: np.ndarray, cheap: np.ndarray, front: np.ndarray,
                            seed: int = 0, points: int = QMC_POINTS) -> np.ndarray:
    """Expected hypervolume improvement of each candidate over `front`, in the unit box (reference
    point 1 in every objective; all minimised, the first the error): for candidate j with cheap
    objectives c_j (known) and error ~ N(m_j, s_j), E[HVI_j] = integral over the box of
    [c_j <= x_cheap] [x not dominated by the front] P(error_j <= x_error) dx, on a scrambled Sobol set.
    A candidate whose optimistic point (error m_j - `OPTIMISM` s_j, c_j) the front dominates scores 0
    without the integral (what it leaves out is the normal tail past 3 sd)."""
    from scipy.stats import qmc

    d = 1 + cheap.shape[1]
    front = _nondominated(np.asarray(front, float).reshape(-1, d))
    x = qmc.Sobol(d, scramble=True, seed=seed).random(points)
    open_ = np.ones(len(x), bool)
    for f in front:
        open_ &= ~np.all(x >= f, axis=1)
    x = x[open_]
    out = np.zeros(len(cheap))
    if not len(x):
        return out
    optimistic = np.column_stack([error_mu - OPTIMISM * error_sigma, cheap])
    hopeful = np.flatnonzero(~np.any(np.all(optimistic[:, None, :] >= front[None, :, :], axis=2), axis=1)) \
        if len(front) else np.arange(len(cheap))
    for start in range(0, len(hopeful), 256):
        j = hopeful[start:start + 256]
        under = np.ones((len(j), len(x)), bool)  # accuracy alone (no cheap objective): every point
        for k in range(cheap.shape[1]):
            under &= cheap[j, None, k] <= x[None, :, 1 + k]
        rows, cols = np.nonzero(under)  # the error's probability only where the candidate's costs are inside
        p = _normal_cdf((x[cols, 0] - error_mu[j][rows]) / error_sigma[j][rows])
        out[j] = np.bincount(rows, p, minlength=len(j)) / points
    return out


def _nondominated(points: np.ndarray) -> np.ndarray:
    """The rows of `points` (all minimised) that no other row dominates: the same dominated region."""
    if len(points) < 2:
        return points
    keep = np.ones(len(points), bool)
    for i, p in enumerate(points):
        if keep[i]:
            dominated = np.all(points >= p, axis=1) & np.any(points > p, axis=1)
            keep &= ~dominated
    _, first = np.unique(points[keep], axis=0, return_index=True)
    return points[keep][np.sort(first)]
