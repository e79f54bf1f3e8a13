"""Which Optuna sampler proposes the next spec, per the study's strategy."""

from __future__ import annotations

from ._study import StudyConfig

__all__ = ["make_sampler"]


def make_sampler(config: StudyConfig):
    """The seeded sampler of `config.sampler`. Budgets reach the samplers as per-trial constraints
    (set when a trial is told), not a callback; KerasTuner's oracles get them folded into one
    scalar (`scalarize`)."""
    import optuna

    if config.sampler.startswith("kerastuner-"):
        from ._kerastuner import KerasTunerSampler

        return KerasTunerSampler(config.sampler, config.search_space().parameters(), config.budgets, config.seed,
                                 config.proxy.epochs)
    if config.sampler == "nsga2":
        population = max(8, min(50, config.trials // 3))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=config.seed)
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=config.seed, multivariate=True, n_startup_trials=min(10, max(3, config.trials // 3)))
    # "random", and "guided": its specs come through study.enqueue_trial (`_guided`); the random sampler
    # draws only once its feasible pool is used up
    return optuna.samplers.RandomSampler(seed=config.seed)
