"""The search: what to look for under which budget, and the loop that finds it.

    StudyConfig, load_study, study_names, ...       study files and run configs (`_study`)
    Budgets                                         hard limits as constraint values (`_budgets`)
    OBJECTIVES, dominates, non_dominated            objectives and Pareto dominance (`_pareto`)
    analytic_screen, footprint_screen, ...          feasibility before training (`_screen`)
    make_sampler                                    the strategy's Optuna sampler (`_samplers`, `_kerastuner`)
    GuidedProposer, Estimator                       the default strategy: free objectives, surrogate, EHVI (`_guided`, `_estimate`)
    Halving, rungs_for                              successive halving across proxy epochs (`_halving`)
    warm_start_specs                                an earlier study's best specs first (`_warm`)
    run_study, SearchSummary                        the ask/tell driver (`_driver`)
    proxy_pareto, retrain_pareto, final_pareto      multi-fidelity and the final answer (`_final`)
    attach_teacher                                  the distillation teacher, cached per run (`_teacher`)
    metrics_of, trial_rows, trained_rows, ...       the trial record in the study storage (`_record`)
    LocalExecutor, make_executor, TrialOutcome      where trials run: here or on Ray (`_executors`, `_ray`)
    TrialTimeout, lost_worker, timed_out            faults an executor reports: timeouts, workers lost twice (`_faults`)
    storage_for, open_study, redact                 study storage, a study created or resumed in it (`_storage`)

Optuna, Ray and KerasTuner are imported when used; `scalarize` and `KerasTunerSampler` are loaded
on first access.
"""

from ._budgets import UNKNOWN, Budgets
from ._driver import FAILURES_BEFORE_GIVING_UP, MAX_DUPLICATES_IN_A_ROW, MAX_SCREENED_IN_A_ROW, SearchSummary, run_study
from ._executors import LocalExecutor, make_executor
from ._faults import AUTO_TIMEOUT_AFTER, AUTO_TIMEOUT_FACTOR, AUTO_TIMEOUT_FLOOR_S, TrialTimeout, lost_worker, timed_out
from ._teacher import TEACHER_DIR, attach_teacher
from ._estimate import Estimator
from ._guided import GuidedProposer, expected_hv_improvement, fit_surrogate
from ._halving import Halving, halving_rule, rungs_for
from ._warm import warm_start_specs
from ._final import FINAL_RECORD, SELECTION_RULE, final_pareto, load_finals, proxy_pareto, retrain_pareto
from ._pareto import OBJECTIVES, dominates, non_dominated
from ._record import PENALTY, count_trials, metrics_of, trained_rows, trial_rows
from ._samplers import make_sampler
from ._screen import Screen, analytic_screen, check_budgets_reachable, footprint_screen, smallest_specs, space_floor
from ._storage import open_study, redact, storage_for
from ._study import (DEFAULT_DEVICE, DEFAULT_SAMPLER, SAMPLERS, StudyConfig, check_teacher, device_space, load_run_config, load_study,
                     load_study_dataset, study_from_dict, study_names, with_board_memory, write_run_config)
from ._trial import TrialOutcome, run_final, run_trial

__all__ = ["AUTO_TIMEOUT_AFTER", "AUTO_TIMEOUT_FACTOR", "AUTO_TIMEOUT_FLOOR_S", "TrialTimeout", "lost_worker", "timed_out", "DEFAULT_DEVICE", "DEFAULT_SAMPLER", "GuidedProposer", "expected_hv_improvement", "fit_surrogate", "Halving", "halving_rule", "rungs_for", "Estimator", "warm_start_specs", "with_board_memory", "UNKNOWN", "Budgets", "FAILURES_BEFORE_GIVING_UP", "MAX_DUPLICATES_IN_A_ROW", "MAX_SCREENED_IN_A_ROW", "SearchSummary", "open_study", "run_study",
           "LocalExecutor", "make_executor", "FINAL_RECORD", "SELECTION_RULE", "final_pareto", "load_finals", "proxy_pareto", "retrain_pareto",
           "OBJECTIVES", "dominates", "non_dominated", "PENALTY", "count_trials", "metrics_of", "trained_rows",
           "trial_rows", "make_sampler", "Screen", "analytic_screen", "check_budgets_reachable", "footprint_screen", "smallest_specs",
           "space_floor", "redact", "storage_for", "SAMPLERS", "StudyConfig", "device_space", "load_run_config", "load_study", "load_study_dataset",
           "study_from_dict", "study_names", "write_run_config", "check_teacher", "TEACHER_DIR", "attach_teacher", "TrialOutcome", "run_final", "run_trial",
           "KerasTunerSampler", "scalarize"]


def __getattr__(name: str):
    if name in ("KerasTunerSampler", "scalarize"):  # imports Optuna: loaded on first use
        from . import _kerastuner

        return getattr(_kerastuner, name)
    raise AttributeError(f"module 'nas.search' has no attribute {name!r}")
