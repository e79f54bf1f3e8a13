"""Which Optuna sampler proposes the next spec, per the study's strategy."""

from __future__ import annotations

import numpy as np

from ._study import StudyConfig

__all__ = ["make_sampler"]


def make_sampler(config: StudyConfig, resumed_at: int = 0):
    """The seeded sampler of `config.sampler`. Budgets reach the samplers as per-trial constraints
    (set when a trial is told), not a callback; KerasTuner's oracles get them folded into one
    scalar (`scalarize`). `resumed_at`: how many trials the study already holds; a resumed study's
    Optuna sampler is seeded past them, since the seed alone would draw the first trials' specs again
    (the driver refuses to train a spec twice, so those draws would be asked for nothing)."""
    import optuna

    if config.sampler.startswith("kerastuner-"):
        from ._kerastuner import KerasTunerSampler

        return KerasTunerSampler(config.sampler, config.search_space().parameters(), config.budgets, config.seed,
                                 config.proxy.epochs)
    seed = config.seed if not resumed_at else int(np.random.SeedSequence([config.seed, resumed_at]).generate_state(1)[0])
    if config.sampler == "nsga2":
        population = max(8, min(50, config.trials // 3))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min(10, max(3, config.trials // 3)))
    # "random", and "guided": the driver starts its proposals as trials with their parameters (`_guided`),
    # and it ends when its feasible pool is used up; the random sampler is never asked for them
    return optuna.samplers.RandomSampler(seed=seed)
