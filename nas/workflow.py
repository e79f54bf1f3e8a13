"""The engine end to end, as the CLI and a Python user call it: a search, then its outputs.

`run_search` is `nas.search.run_study` (the search and its records) followed by
`nas.outputs.write_outputs` (trials.csv, pareto.csv, report.md, pareto.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .outputs import write_outputs
from .search import SearchSummary, StudyConfig, run_study

__all__ = ["run_search"]


def run_search(config: StudyConfig, out_dir: str | Path, *, storage: str | None = None, progress: bool = True,
               evaluate: Callable | None = None, ray_address: str | None = None, workers: int | None = None,
               cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0, time_budget_s: float | None = None,
               join: bool = False, trial_timeout_s: float | None = None) -> SearchSummary:
    """Run (or resume) the study `config` in `out_dir` and write its outputs there; the summary
    (with every trial's record and the final Pareto set) back. See `nas.search.run_study`."""
    summary = run_study(config, Path(out_dir), storage=storage, progress=progress, evaluate=evaluate,
                        ray_address=ray_address, workers=workers, cpus_per_trial=cpus_per_trial,
                        gpus_per_trial=gpus_per_trial, time_budget_s=time_budget_s, join=join,
                        trial_timeout_s=trial_timeout_s)
    write_outputs(summary, config)
    return summary
