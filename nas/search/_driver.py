"""The search: Optuna multi-objective over a space, with budgets as hard constraints, feasibility
screening before training, and multi-fidelity (short proxy training for every candidate, final
retraining and test-split measurement for the proxy Pareto set).

The driver uses Optuna's ask/tell interface: it owns the sampler and the study storage, builds a
spec from each asked trial, screens it, has an executor evaluate it and tells the result. Trial
records (`_record`) carry every measurement, so the study storage alone is enough to resume.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import interrupt
from ..errors import ConfigError, InfeasibleBudgetError, NasError
from ..files import atomic_write_bytes
from ._final import final_pareto, retrain_pareto
from ._pareto import OBJECTIVES
from ._progress import Progress
from ._record import PENALTY, constrain, count_trials, metrics_of, objective_values, record, trained_rows, trial_rows
from ._samplers import make_sampler
from ._screen import analytic_screen, check_budgets_reachable
from ._stale import fail_interrupted, worker_id
from ._storage import redact, storage_for
from ._study import StudyConfig, write_run_config
from ._trial import TrialOutcome

__all__ = ["run_study", "open_study", "SearchSummary", "MAX_SCREENED_IN_A_ROW", "FAILURES_BEFORE_GIVING_UP"]

MAX_SCREENED_IN_A_ROW = 2000  # asked specs in a row rejected before training, then give up
FAILURES_BEFORE_GIVING_UP = 5  # if the first N trained candidates all fail, stop and say why


@dataclass(frozen=True)
class SearchSummary:
    """What a search did, and its records: one row per stored trial, every final result, and the
    final Pareto set (most accurate first)."""

    out_dir: Path
    trained: int
    failed: int
    screened: int
    final: int
    elapsed_s: float
    proxy_s: float = 0.0  # time spent in this call's proxy phase (screening, training, measuring)
    trials: tuple[dict, ...] = ()
    finals: tuple[dict, ...] = ()
    pareto: tuple[dict, ...] = ()


def open_study(config: StudyConfig, out_dir: Path, storage=None):
    """The Optuna study of `config` in `storage` (default: SQLite in `out_dir`), created or resumed;
    ConfigError when the stored study was run with other settings."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [OBJECTIVES[o] for o in config.objectives]
    try:
        study = optuna.create_study(study_name=config.name, storage=storage_for(out_dir, storage), directions=directions,
                                    sampler=make_sampler(config), load_if_exists=True)
    except ConfigError:
        raise
    except Exception as exc:
        where = redact(storage) if isinstance(storage, str) else str(out_dir)
        raise ConfigError(f"cannot open study {config.name!r} in {where}: {' '.join(str(exc).split())[:200]}") from None
    stored = study.user_attrs.get("identity")
    if stored is None:
        study.set_user_attr("identity", config.identity())
        study.set_user_attr("config", json.dumps(config.to_dict(), default=str))
    elif stored != config.identity():
        raise ConfigError(f"the study {config.name!r} in this storage was run with another dataset, space, seed, objectives "
                          "or proxy settings; use another --out (or --storage) to start a new study")
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(f"the stored study {config.name!r} has other objectives; use another --out")
    return study


def run_study(
    config: StudyConfig,
    out_dir: Path,
    *,
    storage: str | None = None,
    progress: bool = True,
    evaluate: Callable | None = None,
    ray_address: str | None = None,
    workers: int | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
) -> SearchSummary:
    """Run (or resume) the study until it holds `config.trials` finished trained trials, retrain
    the proxy Pareto set with the final settings, and record the run (study storage, models,
    final results, study.json). Reports are written by `nas.outputs.write_outputs`.

    With `ray_address` (an existing cluster, or "auto") or `workers` (a local Ray started for this
    run) the trials run as Ray tasks, `workers` at a time; the driver keeps the sampler, the
    storage and every output, so both paths write the same files.
    """
    from ..data import load_dataset
    from ..latency import load_device
    from ._executors import make_executor

    started = time.perf_counter()
    # Everything a user can get wrong is checked before the output folder is touched.
    space, device = config.search_space(), load_device(config.device)
    dataset = load_dataset(config.dataset, config.data_dir, seed=config.seed)
    check_budgets_reachable(space, dataset.channels, dataset.num_classes, config.budgets, device)
    if storage is not None:
        storage = storage_for(out_dir, storage)  # an unreachable database fails here, before any output
    executor = make_executor(dataset, config, evaluate=evaluate, ray_address=ray_address, workers=workers,
                             cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    try:
        out_dir = _prepare_out_dir(out_dir)
        study = open_study(config, out_dir, storage)
        fail_interrupted(study)
        counts = _Driver(study, config, space, device, dataset, executor, out_dir, progress).run()
        proxy_s = time.perf_counter() - started
        finals = retrain_pareto(study, config, out_dir, executor=executor, progress=progress)
    finally:
        executor.close()
    write_run_config(config, out_dir)
    return SearchSummary(out_dir, *counts, len(finals), time.perf_counter() - started, proxy_s,
                         trials=tuple(trial_rows(study, config)), finals=tuple(finals),
                         pareto=tuple(final_pareto(finals, config)))


class _Driver:
    """The ask/tell loop: keeps `executor.capacity` trials in flight until the study is full."""

    def __init__(self, study, config: StudyConfig, space, device, dataset, executor, out_dir: Path, progress: bool):
        self.study, self.config, self.space, self.device = study, config, space, device
        self.dataset, self.executor = dataset, executor
        self.models_dir = out_dir / "models"
        self.models_dir.mkdir(exist_ok=True)
        self.trained, self.failed, self.screened = count_trials(study)
        self.best = _best_feasible(study, config)  # then kept up to date as trials are told
        self.screened_in_a_row = 0
        self.inflight: dict[int, Any] = {}
        self.bar = Progress(config.trials, self.trained + self.failed, progress)

    def run(self) -> tuple[int, int, int]:
        try:
            while True:
                interrupt.check()  # a Ctrl-C whose KeyboardInterrupt a finaliser swallowed
                while len(self.inflight) < self.executor.capacity and self._needed() > len(self.inflight):
                    self._ask()
                if not self.inflight:
                    break
                for number, outcome in self.executor.wait():
                    self._tell(self.inflight.pop(number), outcome)
        except BaseException:
            self._abandon_inflight()
            raise
        finally:
            self.bar.close()
        return self.trained, self.failed, self.screened

    def _needed(self) -> int:
        return self.config.trials - self.trained - self.failed

    def _ask(self) -> None:
        trial = self.study.ask()
        spec = self.space.build(lambda name, options: trial.suggest_categorical(name, options))
        record(trial, {"spec": spec.to_json(), "spec_hash": spec.hash, "quantization": spec.quantization,
                       "worker": worker_id()})
        verdict = analytic_screen(spec, self.dataset.channels, self.dataset.num_classes, self.config.budgets, self.device)
        if verdict.feasible:
            self.inflight[trial.number] = trial
            epochs = getattr(self.study.sampler, "epochs_for", lambda n: None)(trial.number)
            proxy = dataclasses.replace(self.config.proxy, epochs=int(epochs)) if epochs else None
            if proxy is not None:
                record(trial, {"proxy_epochs": epochs})
            self.executor.submit(trial.number, spec, proxy)
        else:
            self._tell_screened(trial, verdict)

    def _tell(self, trial, outcome: TrialOutcome) -> None:
        import optuna

        if outcome.kind == "screened":
            self._tell_screened(trial, outcome.verdict)
            return
        self.screened_in_a_row = 0
        if outcome.kind == "ok" and self.device.runtime == "tflm" and not outcome.result.tflm_compatible:
            outcome = TrialOutcome("failed", result=outcome.result, failed_stage="tflm",
                                   reason=f"TFLite Micro cannot run the trained model: {outcome.result.tflm_reason}")
        if outcome.kind == "failed":
            self.failed += 1
            record(trial, {"failed_stage": outcome.failed_stage, "reason": outcome.reason})
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if self.trained == 0 and self.failed >= FAILURES_BEFORE_GIVING_UP:
                raise NasError(f"the first {self.failed} trained candidates all failed; "
                               f"last: {outcome.failed_stage}: {outcome.reason}")
        else:
            self.trained += 1
            metrics = metrics_of(outcome.result, self.device)
            model_path = self.models_dir / f"trial-{trial.number:05d}.tflite"
            atomic_write_bytes(model_path, outcome.result.tflite)
            record(trial, {**metrics, "screened": False, "model": model_path.name})
            constrain(trial, self.config, metrics)
            self.study.tell(trial, objective_values(self.config, metrics))
            if self.config.budgets.admits(metrics):
                self.best = max(self.best or 0.0, metrics["accuracy"])
        self.bar.update(1, self._postfix())

    def _tell_screened(self, trial, verdict) -> None:
        self.screened += 1
        self.screened_in_a_row += 1
        finite = lambda v: v if v == v else PENALTY  # noqa: E731 - NaN where the footprint was not reached
        metrics = {"size_bytes": finite(verdict.size_bytes), "peak_ram_bytes": finite(verdict.peak_ram_bytes),
                   "latency_ms": verdict.latency_ms}
        record(trial, {"screened": True, "screen_stage": verdict.stage, "reason": verdict.reason, **metrics})
        constrain(trial, self.config, metrics)
        self.study.tell(trial, objective_values(self.config, {"accuracy": 0.0, **metrics}))
        if self.screened_in_a_row >= MAX_SCREENED_IN_A_ROW:
            raise InfeasibleBudgetError(
                f"{MAX_SCREENED_IN_A_ROW} sampled specs in a row broke the budget before training "
                f"(last: {verdict.reason}); the budget is too tight for space {self.space.name!r}")
        self.bar.update(0, self._postfix())

    def _postfix(self) -> str:
        best = f"{self.best:.3f}" if self.best is not None else "none yet"
        return f"best feasible acc {best} | failed {self.failed} | screened {self.screened}"

    def _abandon_inflight(self) -> None:
        """Ctrl-C or an error: mark the trials in flight as interrupted, so a resume redoes them."""
        import optuna

        self.executor.close(cancel=True)
        for trial in self.inflight.values():
            try:
                record(trial, {"failed_stage": "interrupted", "reason": "the search stopped during this trial"})
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            except Exception:  # the storage itself may be what failed; a resume cleans up then
                pass
        self.inflight.clear()


def _prepare_out_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {out_dir} cannot be created: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise ConfigError(f"output folder {out_dir} cannot be written")
    return out_dir


def _best_feasible(study, config: StudyConfig) -> float | None:
    """The best proxy accuracy among stored trained trials within budget (read once, at start)."""
    return max((r["accuracy"] for r in trained_rows(study) if config.budgets.admits(r)), default=None)
