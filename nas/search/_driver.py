"""The search: Optuna multi-objective over a space, with budgets as hard constraints, feasibility
screening before training, and multi-fidelity (short proxy training for every candidate, final
retraining and test-split measurement for the proxy Pareto set).

The driver uses Optuna's ask/tell interface: it owns the sampler and the study storage, builds a
spec from each asked trial, screens it, has an executor evaluate it and tells the result. Trial
records (`_record`) carry every measurement, so the study storage alone is enough to resume.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import interrupt
from ..errors import ConfigError, InfeasibleBudgetError, NasError
from ..files import atomic_write_bytes
from ..logs import RunLog
from ._estimate import Estimator
from ._executors import make_executor
from ._faults import TrialTimeout
from ._final import final_pareto, retrain_pareto
from ._guided import GuidedProposer
from ._halving import halving_rule, rungs_for
from ._ledger import REFRESH_S, Ledger
from ._progress import Progress, driver_times, print_plan
from ._record import (DUPLICATE, constrain, count_trials, interrupted, metrics_of, objective_values, record,
                      trained_rows, trial_key, trial_rows)
from ._screen import analytic_screen, check_budgets_reachable
from ._stale import Heartbeat, fail_interrupted, other_drivers, requeue_interrupted, worker_id
from ._storage import open_study, storage_for, where_of
from ._study import StudyConfig, write_run_config
from ._trial import TrialOutcome
from ._warm import warm_start_specs

__all__ = ["run_study", "SearchSummary", "MAX_SCREENED_IN_A_ROW", "MAX_DUPLICATES_IN_A_ROW",
           "FAILURES_BEFORE_GIVING_UP"]

MAX_SCREENED_IN_A_ROW = 2000  # asked specs in a row rejected before training, then stop asking
MAX_DUPLICATES_IN_A_ROW = 200  # asked specs in a row that earlier trials had, then stop asking
FAILURES_BEFORE_GIVING_UP = 5  # if the first N trained candidates all fail, stop and say why


@dataclass(frozen=True)
class SearchSummary:
    """What a search did, and its records: one row per stored trial, every final result, the final
    Pareto set (chosen on validation: highest validation accuracy first), the dataset it read, and
    notes on what the device cut from the space."""

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
    dataset: dict = field(default_factory=dict)  # Dataset.summary(): splits, sizes, the file read
    notes: tuple[str, ...] = ()
    stopped: str = ""  # why the search stopped asking before `trials` were trained (a planned end), else ""
    #: the driver's own time per ask and per tell in this call (`ask_p50`, `ask_p99`, `tell_p50`, `tell_p99`,
    #: in ms, and the counts): what a cluster's workers wait for between trials
    driver_ms: dict = field(default_factory=dict)


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
    time_budget_s: float | None = None,
    executor=None,
    join: bool = False,
    trial_timeout_s: float | None = None,
) -> SearchSummary:
    """Run (or resume) the study until it holds `config.trials` finished trained trials, retrain
    the proxy Pareto set with the final settings, and record the run (study storage, models,
    final results, study.json). Reports are written by `nas.outputs.write_outputs`.

    With `ray_address` (an existing cluster, or "auto") or `workers` (a local Ray started for this
    run) the trials run as Ray tasks, `workers` at a time; the driver keeps the sampler, the
    storage and every output, so both paths write the same files. `executor`: one of the caller's
    instead (`capacity`, `submit`, `wait`, `evaluate_final`, `close`, as `LocalExecutor` has them),
    such as benchmarks/cluster_sim.py's simulated cluster; it is closed at the end like the others.
    A study that another driver is searching now (a shared `storage`) is refused unless `join`: joined
    drivers read the study before every ask, so each proposes around the others' trials.
    `trial_timeout_s`: a trial with no result this long after it started fails as timed out
    (None: automatic, `TrialTimeout`; the executor enforces it at every `wait`, the in-process one cannot).
    """
    from ..latency import load_device
    from ._study import load_study_dataset

    started = time.perf_counter()
    where = where_of(storage, out_dir)  # the study's place in messages, a URL's password masked
    with RunLog() as run_log:  # <out>/search.log, once <out> exists
        # Everything a user can get wrong is checked before the output folder is touched.
        space, device = config.search_space(), load_device(config.device)
        dataset = load_study_dataset(config)
        check_budgets_reachable(space, dataset.channels, dataset.num_classes, config.budgets, device)
        # a warm start is for a new study: on a resume its folder is not read again
        fresh = storage is not None or not (Path(out_dir).expanduser() / "study.db").exists()
        warm = warm_start_specs(config, space, device, dataset.channels, dataset.num_classes) \
            if config.warm_start and fresh else []
        for name, value in (("time budget", time_budget_s), ("trial timeout", trial_timeout_s)):
            if value is not None and not value > 0:
                raise ConfigError(f"{name}: expected a positive number of seconds, got {value!r}")
        if storage is not None:
            storage = storage_for(out_dir, storage)  # an unreachable database fails here, before any output
        if executor is None:
            executor = make_executor(dataset, config, evaluate=evaluate, ray_address=ray_address, workers=workers,
                                     cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
        try:
            out_dir = _prepare_out_dir(out_dir)
            run_log.attach(out_dir / "search.log")
            storage = storage_for(out_dir, storage)
            study = open_study(config, out_dir, storage, config.identity(dataset.fingerprint))
            fail_interrupted(study, storage)
            others = other_drivers(study)
            if others and not join:
                driver, seen = others[0]
                raise ConfigError(f"the study {config.name!r} in {where} is being searched by another "
                                  f"driver ({driver}, seen {seen:.0f} s ago); pass --join to search it together, or wait "
                                  "for it to end")
            requeue_interrupted(study)  # what was in flight when a search stopped runs first
            if progress:
                print_plan(config, space, device, dataset, out_dir)
            stored = study.get_trials(deepcopy=False)
            if stored:  # said with or without the progress display: what a resume starts from
                kept = count_trials(study)
                redone = sum(t.state.name == "FAIL" and interrupted(t.user_attrs) for t in stored)
                print(f"resuming {out_dir}: {kept[0]} trained, {kept[1]} failed and {kept[2]} rejected trial(s) kept"
                      + (f" ({redone} interrupted, redone)" if redone else "")
                      + f"; {max(config.trials - kept[0] - kept[1], 0)} more trained trial(s) to reach {config.trials}",
                      file=sys.stderr, flush=True)
            if config.warm_start and study.get_trials(deepcopy=False):
                if progress:
                    print(f"warm start from {config.warm_start}: not used, the study already holds trials", file=sys.stderr)
            else:
                for spec, source in warm:
                    study.enqueue_trial(space.to_params(spec), user_attrs={"proposed_by": source})
            deadline = started + time_budget_s if time_budget_s else None
            driver = _Driver(study, storage, config, space, device, dataset, executor, out_dir, progress, deadline, join,
                             trial_timeout_s)
            try:
                counts = driver.run()
                counts = (*count_trials(study)[:2], counts[2]) if driver.joined else counts  # the study's, at the end
            except KeyboardInterrupt:
                kept = count_trials(study)
                print(f"\ninterrupted: {kept[0]} trained and {kept[1]} failed trial(s) are kept in {out_dir}; the same "
                      "command resumes the search (the trials in flight are redone)", file=sys.stderr, flush=True)
                raise
            times = driver_times(driver.ask_s, driver.tell_s)
            logging.getLogger("nas.search").info(
                "driver: %d asks, p50 %s ms, p99 %s ms; %d tells, p50 %s ms, p99 %s ms", times["asks"], times.get("ask_p50"),
                times.get("ask_p99"), times["tells"], times.get("tell_p50"), times.get("tell_p99"))
            if driver.stopped and progress:
                print(f"stopped asking after {counts[0]} trained trial(s): {driver.stopped}; final training on those",
                      file=sys.stderr, flush=True)
            proxy_s = time.perf_counter() - started
            finals = retrain_pareto(study, config, out_dir, executor=executor, progress=progress, dataset=dataset)
        finally:
            executor.close()
        write_run_config(config, out_dir)
        return SearchSummary(out_dir, *counts, len(finals), time.perf_counter() - started, proxy_s,
                             trials=tuple(trial_rows(study, config)), finals=tuple(finals),
                             # `test_accuracy` too: the name pareto.csv gives the final model's test accuracy
                             pareto=tuple({**r, "test_accuracy": r.get("accuracy")} for r in final_pareto(finals, config)),
                             dataset=dataset.summary(),
                             notes=config.space_notes(), stopped=driver.stopped, driver_ms=times)


class _Driver:
    """The ask/tell loop: keeps `executor.capacity` trials in flight until the study is full."""

    def __init__(self, study, storage, config: StudyConfig, space, device, dataset, executor, out_dir: Path, progress: bool,
                 deadline: float | None = None, join: bool = False, trial_timeout_s: float | None = None):
        self.study, self.storage, self.config, self.space, self.device = study, storage, config, space, device
        self.deadline = deadline
        c, k = dataset.channels, dataset.num_classes
        self.proposer = GuidedProposer(config, space, device, c, k) if config.sampler == "guided" else None
        self.rungs = rungs_for(config.proxy.epochs) if config.halving_on else ()
        self.estimator = self.proposer.estimator if self.proposer is not None else Estimator(config, space, device, c, k)
        self.inflight_specs: dict[int, Any] = {}
        self.dataset, self.executor = dataset, executor
        self.models_dir = out_dir / "models"
        self.models_dir.mkdir(exist_ok=True)
        self.trained, self.failed, self.screened = count_trials(study)
        self.best = _best_feasible(study, config)  # then kept up to date as trials are told
        self.screened_in_a_row = 0
        self.duplicates_in_a_row = 0
        self.joined = join
        self.others: set[str] = set()  # the other live drivers of the study, as last read
        self.ledger = Ledger(study, refresh_s=0.0 if join else REFRESH_S)  # what asks read of the study, in memory
        self.asked = dict(self.ledger.asked)  # trial key -> the trial that has it
        self.timeout = TrialTimeout(trial_timeout_s, self.ledger.trained)
        self._study_id: int | None = None  # the storage's id of the study, read at the first guided proposal
        self.stopped = ""  # why the search stopped asking early (a planned end: what was trained is kept)
        self.inflight: dict[int, Any] = {}
        self.bar = Progress(config.trials, self.trained + self.failed, progress)
        self.heartbeat = Heartbeat(study, storage)
        self.ask_s: list[float] = []  # the driver's seconds per ask and per tell
        self.tell_s: list[float] = []

    def run(self) -> tuple[int, int, int]:
        try:
            while True:
                interrupt.check()  # a Ctrl-C whose KeyboardInterrupt a finaliser swallowed
                while len(self.inflight) < self.executor.capacity and self._needed() > len(self.inflight) and not self.stopped:
                    began = time.perf_counter()
                    self._ask()
                    self.ask_s.append(time.perf_counter() - began)
                if not self.inflight:
                    break
                for number, outcome in self.executor.wait(self.timeout.seconds()):
                    began = time.perf_counter()
                    self.heartbeat.remove(number)
                    self.inflight_specs.pop(number, None)
                    self._tell(self.inflight.pop(number), outcome)
                    self.tell_s.append(time.perf_counter() - began)
        except BaseException:
            self._abandon_inflight()
            raise
        finally:
            self.heartbeat.close()
            self.bar.close()
        if self.stopped and self.trained == 0:  # a planned end with nothing to retrain or report
            raise InfeasibleBudgetError(f"no candidate was trained: {self.stopped}")
        return self.trained, self.failed, self.screened

    def _sync(self, after_ask: bool = False) -> None:
        """The ledger read again when due (every ask for joined drivers), and `asked` taken from it, so
        that this driver does not train what another asked; joined, the counts become the study's.
        `after_ask`: a trial was just asked; a driver that finds another on its study then joins it
        (it reads the study before every ask from then on)."""
        if after_ask or self.joined:
            self.others = {driver for driver, _ in other_drivers(self.study)}
            if self.others and not self.joined:
                self.joined, self.ledger.refresh_s = True, 0.0
                logging.getLogger("nas.search").info("another driver is searching this study: reading it before every ask")
        if self.ledger.refresh():
            self.asked = dict(self.ledger.asked)  # this driver's asks are in the study too
            if self.joined:
                self.trained, self.failed = len(self.ledger.trained), self.ledger.failed

    def _needed(self) -> int:
        """Trials still to ask for (the trials in flight included): joined drivers count the others' in flight as asked."""
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return 0
        if self.joined:
            self._sync()
        # trials in flight in a live driver; a dead one's are failed and redone when a search starts on the study
        elsewhere = sum(n for worker, n in self.ledger.running.items() if worker in self.others) if self.joined else 0
        return self.config.trials - self.trained - self.failed - elsewhere

    def _calibration(self):
        """The study's trained rows, and the cheap objectives' calibration on every exact size and
        arena it holds (trained trials, and footprint rejections): from the ledger, once per ask."""
        trained = self.ledger.trained
        return trained, self.estimator.growing_corrections(trained + self.ledger.footprints)

    def _propose(self, trained, corrections):
        """The guided strategy's next proposal; None when its feasible pool is used up (the search then
        ends as planned: the guided strategy never falls back to undirected draws)."""
        # an interrupted trial's work is redone, so its spec may be proposed again (`Ledger.taken`)
        pending = [*self.inflight_specs.values(), *self.ledger.in_flight(self.others)]  # a joined driver's peers' too
        proposal = self.proposer.propose(trained, self.ledger.taken, pending, corrections)
        if proposal is None:
            self.stopped = (f"the guided strategy has tried every spec of its pool estimated within budget "
                            f"({self.proposer.pool_summary()}); widen the budgets or the space to search further")
        return proposal

    def _start(self, proposal, spec):
        """A running trial of `proposal`, with its parameters and ask-time record, written in one
        storage transaction (asking Optuna for it would read every trial in flight and write each
        parameter and attribute on its own: a 64-worker search's driver spent most of its time there)."""
        import optuna

        distributions = {}
        self.space.build(lambda name, options: distributions.setdefault(name, optuna.distributions.CategoricalDistribution(options))
                         and proposal.params[name])
        template = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING, params={name: proposal.params[name] for name in distributions},
            distributions=distributions, user_attrs={**self._ask_record(spec), "proposed_by": proposal.source})
        if self._study_id is None:
            self._study_id = self.storage.get_study_id_from_name(self.study.study_name)
        return optuna.trial.Trial(self.study, self.storage.create_new_trial(self._study_id, template_trial=template))

    @staticmethod
    def _ask_record(spec) -> dict:
        return {"spec": spec.to_json(), "spec_hash": spec.hash, "quantization": spec.quantization, "worker": worker_id()}

    def _ask(self) -> None:
        import optuna

        with warnings.catch_warnings():  # Optuna warns that heartbeats are meant for optimize(); we beat ourselves
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._sync()
            calibration = self._calibration() if self.proposer is not None or self.rungs else None
            # a queued trial (a warm start's) is asked before the guided strategy proposes
            proposal = self._propose(*calibration) if self.proposer is not None and not self.ledger.waiting else None
            if proposal is None and self.stopped:
                return
            trial = self._start(proposal, proposal.spec) if proposal is not None else self.study.ask()
        epochs = None
        if proposal is not None:
            spec = proposal.spec
        else:
            spec = self.space.build(lambda name, options: trial.suggest_categorical(name, options))
            # Hyperband trains a spec again at a larger fidelity (known once its oracle proposed): not a duplicate
            epochs = getattr(self.study.sampler, "epochs_for", lambda n: None)(trial.number)
            source = getattr(self.study.sampler, "proposal_source", None)
            if "proposed_by" in trial.user_attrs:  # enqueued with its source (warm start): the sampler did not propose it
                source = None
            record(trial, {**self._ask_record(spec), **({"proposed_by": source(trial.number)} if source else {}),
                           **({"proxy_epochs": epochs} if epochs else {})})
        self.ledger.note_ask(spec.hash, queued=proposal is None)
        key = trial_key(spec.hash, epochs)
        self._sync(after_ask=True)  # a driver sharing the study may have asked the same spec meanwhile
        first = self.asked.get(key, trial.number)  # the trial that has this spec first: the others yield
        if first != trial.number:
            self._tell_duplicate(trial, first)
            return
        self.duplicates_in_a_row = 0
        self.asked[key] = trial.number
        verdict = analytic_screen(spec, self.dataset.channels, self.dataset.num_classes, self.config.budgets, self.device)
        if verdict.feasible:
            self.inflight[trial.number] = trial
            self.inflight_specs[trial.number] = spec
            self.heartbeat.add(trial.number)
            proxy = dataclasses.replace(self.config.proxy, epochs=int(epochs)) if epochs else None
            rule = halving_rule(self.estimator, self.rungs, spec, *calibration, len(self.dataset.y_val)) \
                if self.rungs and not epochs else None
            if rule is not None:
                record(trial, {"halving_rungs": list(rule.rungs)})
            self.executor.submit(trial.number, spec, proxy, rule)
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
            constrain(trial, self.config, metrics, runs=True)
            self.study.tell(trial, objective_values(self.config, metrics))
            self.ledger.told_complete(trial)
            self.timeout.observe(outcome.result.timings_s)
            self.best = max(self.best or 0.0, metrics["accuracy"]) if self.config.budgets.admits(metrics) else self.best
        self.bar.update(1, self._postfix())

    def _tell_duplicate(self, trial, first: int) -> None:
        """An ask whose spec trial `first` already has: never trained again, told failed so that the
        samplers ignore it (they read complete trials), and asked anew."""
        import optuna

        record(trial, {"failed_stage": DUPLICATE, "duplicate_of": first,
                       "reason": f"the spec of trial {first}: not trained again"})
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.duplicates_in_a_row += 1
        if self.duplicates_in_a_row >= MAX_DUPLICATES_IN_A_ROW:
            self.stopped = (f"the {self.config.sampler} strategy proposed {MAX_DUPLICATES_IN_A_ROW} specs in a row that "
                            "earlier trials have: the space within budget looks used up")

    def _tell_screened(self, trial, verdict) -> None:
        self.screened += 1
        self.screened_in_a_row += 1
        known = lambda v: v if v is not None and v == v else None  # noqa: E731 - NaN where the footprint was not reached
        latency = known(verdict.latency_ms)
        metrics = {"size_bytes": known(verdict.size_bytes), "peak_ram_bytes": known(verdict.peak_ram_bytes),
                   "latency_ms": latency, "energy_uj": latency * self.device.power_mw
                   if latency is not None and self.device.power_mw is not None else None}
        record(trial, {"screened": True, "screen_stage": verdict.stage, "reason": verdict.reason, **metrics})
        # infeasible to the sampler whatever the budgets: a rejected spec was not something the device can use
        constrain(trial, self.config, metrics, runs=verdict.runs, rejected=True)
        self.study.tell(trial, objective_values(self.config, {"accuracy": 0.0, **metrics}))
        if verdict.stage == "footprint":  # its exact size and arena calibrate the estimates
            self.ledger.told_complete(trial)
        if self.screened_in_a_row >= MAX_SCREENED_IN_A_ROW:
            self.stopped = (f"{MAX_SCREENED_IN_A_ROW} sampled specs in a row broke the budget before training "
                            f"(last: {verdict.reason}); the budget is too tight for space {self.space.name!r} "
                            f"under the {self.config.sampler} strategy (the guided strategy proposes only specs "
                            "estimated within budget)")
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
