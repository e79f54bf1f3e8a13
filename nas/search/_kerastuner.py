"""KerasTuner as a search strategy over the same space, budgets and pipeline (`--strategy
kerastuner-bayes` / `kerastuner-hyperband`).

KerasTuner's oracles propose; everything else is the same search: the proposal becomes an Optuna
trial (so the study, the screens, training, measurement, reports and exports are shared), and
the trial's outcome goes back to the oracle as one scalar, because KerasTuner optimises a single
objective:

    trained, within budget:   accuracy - 0.05 * mean(metric / budget over the budgeted metrics)
    trained, over budget:     accuracy - 1 - min(1, sum of relative violations)
    screened or failed:       -1 - min(1, sum of relative violations)   (-2 when unknown)

so every feasible model ranks above every infeasible one, as the Optuna samplers' constraints do.
Hyperband's per-trial budget (`tuner/epochs`, up to the proxy's epochs) sets that trial's proxy
training epochs; a promoted configuration is retrained from scratch with more epochs. The oracle
lives in memory: a resumed search starts KerasTuner's model of the space afresh (the study's
trials stay).
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from typing import Any

import optuna

from ..errors import DependencyError
from ..units import KB

__all__ = ["KerasTunerSampler", "scalarize"]

COST_WEIGHT = 0.05


def scalarize(attrs: dict[str, Any], budgets, state: str) -> float:
    limits = {"size_bytes": budgets.max_size_kb and budgets.max_size_kb * KB,
              "peak_ram_bytes": budgets.max_ram_kb and budgets.max_ram_kb * KB, "latency_ms": budgets.max_latency_ms}
    violation, costs = 0.0, []
    for key, limit in limits.items():
        value = attrs.get(key)
        if limit and value is not None and math.isfinite(float(value)):
            costs.append(float(value) / limit)
            violation += max(0.0, float(value) / limit - 1.0)
    if state != "COMPLETE" or attrs.get("screened") or attrs.get("accuracy") is None:
        return -1.0 - min(1.0, violation) if costs else -2.0
    accuracy = float(attrs["accuracy"])
    if violation > 0:
        return accuracy - 1.0 - min(1.0, violation)
    return accuracy - COST_WEIGHT * (sum(costs) / len(costs) if costs else 0.0)


class KerasTunerSampler(optuna.samplers.BaseSampler):
    """An Optuna sampler whose proposals come from a KerasTuner oracle over the same choices."""

    def __init__(self, kind: str, parameters: list[tuple[str, list]], budgets, seed: int, max_epochs: int):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                import keras_tuner as kt
        except ImportError:
            raise DependencyError("the KerasTuner strategies need keras-tuner: pip install 'tinyml-nas[kerastuner]' "
                                  "(or pip install 'keras-tuner==1.4.*')") from None
        hp = kt.HyperParameters()
        for name, options in parameters:
            hp.Choice(name, list(options), ordered=False) if len(options) > 1 else hp.Fixed(name, options[0])
        objective = kt.Objective("score", "max")
        if kind == "kerastuner-bayes":
            self._oracle = kt.oracles.BayesianOptimizationOracle(objective=objective, max_trials=100_000, seed=seed)
        else:
            self._oracle = kt.oracles.HyperbandOracle(objective=objective, max_epochs=max(2, max_epochs), factor=3,
                                                      hyperband_iterations=1_000, seed=seed)
        self._dir = tempfile.TemporaryDirectory(prefix="nas-kerastuner-")
        self._oracle._set_project_dir(self._dir.name, "nas")  # KerasTuner writes its trial records here
        self._oracle.hyperparameters = hp
        self._budgets = budgets
        self._fallback = optuna.samplers.RandomSampler(seed=seed)
        self._proposals: dict[int, Any] = {}  # optuna trial number -> KerasTuner trial
        self._fell_back: set[int] = set()  # trial numbers with a value the oracle did not propose
        self.kind = kind

    # Optuna's sampler interface: everything is sampled independently, from the oracle's proposal.
    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, distribution):
        proposal = self._proposal(trial.number)
        values = proposal.hyperparameters.values if proposal is not None else {}
        if name in values and values[name] in getattr(distribution, "choices", (values[name],)):
            return values[name]
        self._fell_back.add(trial.number)
        return self._fallback.sample_independent(study, trial, name, distribution)

    def proposal_source(self, number: int) -> str:
        """Who chose trial `number`'s parameters: "kerastuner", or "random fallback" where the oracle
        had no proposal (it stops proposing when its space is exhausted) for some of them."""
        return "random fallback" if number in self._fell_back else "kerastuner"

    def epochs_for(self, number: int) -> int | None:
        """Hyperband's training budget for this trial (None: the proxy's epochs)."""
        proposal = self._proposals.get(number)
        return proposal.hyperparameters.values.get("tuner/epochs") if proposal is not None else None

    def after_trial(self, study, trial, state, values) -> None:
        proposal = self._proposals.pop(trial.number, None)
        if proposal is None:
            return
        score = scalarize(trial.user_attrs, self._budgets, state.name)
        with contextlib.redirect_stdout(io.StringIO()):
            self._oracle.update_trial(proposal.trial_id, {"score": score})
            proposal.status = "COMPLETED"
            self._oracle.end_trial(proposal)

    def _proposal(self, number: int):
        if number not in self._proposals:
            with contextlib.redirect_stdout(io.StringIO()):
                proposal = self._oracle.create_trial(f"nas-{number}")
            self._proposals[number] = proposal if proposal.status == "RUNNING" else None
        return self._proposals[number]
