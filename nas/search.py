"""The search: Optuna multi-objective over a space, with budgets as hard constraints,
feasibility screening before training, and multi-fidelity (short proxy training for every
candidate, final retraining and test-split measurement for the proxy Pareto set).

The driver uses Optuna's ask/tell interface: it owns the sampler and the study storage, builds
a spec from each asked trial, screens it, evaluates it and tells the result. Trial records
(`user_attrs`) carry every measurement, so the study storage alone is enough to resume.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import interrupt
from .errors import ConfigError, InfeasibleBudgetError, NasError
from .study import OBJECTIVES, StudyConfig

__all__ = ["run_search", "open_study", "SearchSummary", "MAX_SCREENED_IN_A_ROW", "PENALTY"]

MAX_SCREENED_IN_A_ROW = 2000  # asked specs in a row rejected before training, then give up
FAILURES_BEFORE_GIVING_UP = 5  # if the first N trained candidates all fail, stop and say why
PENALTY = 1e12  # objective value of a minimised metric that was never measured


@dataclass
class SearchSummary:
    out_dir: Path
    trained: int
    failed: int
    screened: int
    final: int
    elapsed_s: float
    proxy_s: float = 0.0  # time spent in this call's proxy phase (screening, training, measuring)


# --- storage ----------------------------------------------------------------------------------
def storage_for(out_dir: Path, storage):
    """An Optuna storage: the SQLite file in `out_dir` by default, any RDB URL, or a journal file."""
    import optuna

    if storage is None:
        return f"sqlite:///{(out_dir / 'study.db').resolve()}"
    if not isinstance(storage, str):  # already opened
        return storage
    if "://" in storage:
        try:
            return optuna.storages.RDBStorage(storage)
        except Exception as exc:  # driver errors, unreachable hosts, bad URLs
            raise ConfigError(f"cannot open storage {_redact(storage)}: {_scrub(str(exc), storage)[:200]}") from None
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        return JournalStorage(JournalFileBackend(str(Path(storage).expanduser())))
    except OSError as exc:
        raise ConfigError(f"cannot open journal storage {storage}: {exc.strerror or exc}") from None


def _scrub(text: str, url: str) -> str:
    """`text` on one line with the URL's password, wherever it appears, replaced."""
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    text = " ".join(text.split())
    return text.replace(password, "***") if password else text


def _redact(url: str) -> str:
    """A storage URL with its password replaced, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _sampler(config: StudyConfig):
    """Budgets reach the samplers as per-trial constraints (`_constrain`), not a callback;
    KerasTuner's oracles get them folded into one scalar (`nas.kerastuner.scalarize`)."""
    import optuna

    if config.sampler.startswith("kerastuner-"):
        from .kerastuner import KerasTunerSampler

        return KerasTunerSampler(config.sampler, config.search_space().parameters(), config.budgets, config.seed,
                                 config.proxy.epochs)
    if config.sampler == "nsga2":
        population = max(8, min(50, config.trials // 3))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=config.seed)
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=config.seed, multivariate=True, n_startup_trials=min(10, max(3, config.trials // 3)))
    return optuna.samplers.RandomSampler(seed=config.seed)


def _constrain(trial, config: StudyConfig, metrics: dict[str, Any]) -> None:
    """Budgets as hard constraints: samplers rank every feasible trial above every infeasible one."""
    for key, value in config.budgets.violations(metrics["size_bytes"], metrics["peak_ram_bytes"], metrics.get("latency_ms")).items():
        trial.set_constraint(key, value)


def open_study(config: StudyConfig, out_dir: Path, storage: str | None = None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [OBJECTIVES[o] for o in config.objectives]
    try:
        study = optuna.create_study(study_name=config.name, storage=storage_for(out_dir, storage), directions=directions,
                                    sampler=_sampler(config), load_if_exists=True)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot open study {config.name!r} in {_redact(storage or str(out_dir))}: "
                          f"{' '.join(str(exc).split())[:200]}") from None
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


# --- one trial --------------------------------------------------------------------------------
def _record(trial, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def _values(config: StudyConfig, metrics: dict[str, Any]) -> list[float]:
    out = []
    for name in config.objectives:
        value = metrics.get(name)
        out.append(float(value) if value is not None else (0.0 if name == "accuracy" else PENALTY))
    return out


def _count(study) -> tuple[int, int, int]:
    """(trained and complete, failed, screened) among the stored trials; interrupted ones do not count."""
    import optuna

    trained = failed = screened = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.COMPLETE:
            if t.user_attrs.get("screened"):
                screened += 1
            else:
                trained += 1
        elif t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("failed_stage") != "interrupted":
            failed += 1  # an interrupted trial is not the candidate's failure: its work is redone
    return trained, failed, screened


def _worker_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str | None) -> bool:
    """Whether the process that ran a trial may still be running it (unknown hosts: assume so)."""
    import os
    import socket

    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return bool(worker)  # another machine's worker: only it can say
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid()  # our own pid: reused from the dead process that ran it


def _fail_interrupted(study) -> int:
    """Trials left RUNNING by a killed process on this host: mark them failed, so their work is redone."""
    import optuna

    stale = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
             if not _alive(t.user_attrs.get("worker"))]
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "failed_stage", "interrupted")
        study._storage.set_trial_user_attr(t._trial_id, "reason", "the search process stopped during this trial")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    return len(stale)


def run_search(
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
    """Run (or resume) the study until it holds `config.trials` finished trained trials,
    retrain the proxy Pareto set with the final settings, and write the outputs.

    With `ray_address` (an existing cluster, or "auto") or `workers` (a local Ray started
    for this run) the trials run as Ray tasks, `workers` at a time; the driver keeps the
    sampler, the storage and every output, so both paths write the same files.
    """
    from .data import load_dataset
    from .devices import load_device
    from .executors import make_executor
    from .report import write_outputs
    from .screen import check_budgets_reachable

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
        _fail_interrupted(study)
        counts = _Driver(study, config, space, device, dataset, executor, out_dir, progress).run()
        proxy_s = time.perf_counter() - started
        from .final import retrain_pareto

        finals = retrain_pareto(study, config, out_dir, executor=executor, progress=progress)
    finally:
        executor.close()
    write_outputs(study, config, out_dir, finals)
    return SearchSummary(out_dir, *counts, len(finals), time.perf_counter() - started, proxy_s)


class _Driver:
    """The ask/tell loop: keeps `executor.capacity` trials in flight until the study is full."""

    def __init__(self, study, config: StudyConfig, space, device, dataset, executor, out_dir: Path, progress: bool):
        self.study, self.config, self.space, self.device = study, config, space, device
        self.dataset, self.executor = dataset, executor
        self.models_dir = out_dir / "models"
        self.models_dir.mkdir(exist_ok=True)
        self.trained, self.failed, self.screened = _count(study)
        self.best = _best_feasible(study, config)  # then kept up to date as trials are told
        self.screened_in_a_row = 0
        self.inflight: dict[int, Any] = {}
        self.bar = _Progress(config.trials, self.trained + self.failed, progress)

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
        from .screen import analytic_screen

        trial = self.study.ask()
        spec = self.space.build(lambda name, options: trial.suggest_categorical(name, options))
        _record(trial, {"spec": spec.to_json(), "spec_hash": spec.hash, "quantization": spec.quantization,
                        "worker": _worker_id()})
        verdict = analytic_screen(spec, self.dataset.channels, self.dataset.num_classes, self.config.budgets, self.device)
        if verdict.feasible:
            self.inflight[trial.number] = trial
            epochs = getattr(self.study.sampler, "epochs_for", lambda n: None)(trial.number)
            proxy = dataclasses.replace(self.config.proxy, epochs=int(epochs)) if epochs else None
            if proxy is not None:
                _record(trial, {"proxy_epochs": epochs})
            self.executor.submit(trial.number, spec, proxy)
        else:
            self._tell_screened(trial, verdict)

    def _tell(self, trial, outcome) -> None:
        import optuna

        from .executors import TrialOutcome

        if outcome.kind == "screened":
            self._tell_screened(trial, outcome.verdict)
            return
        self.screened_in_a_row = 0
        if outcome.kind == "ok" and self.device.runtime == "tflm" and not outcome.result.tflm_compatible:
            outcome = TrialOutcome("failed", result=outcome.result, failed_stage="tflm",
                                   reason=f"TFLite Micro cannot run the trained model: {outcome.result.tflm_reason}")
        if outcome.kind == "failed":
            self.failed += 1
            _record(trial, {"failed_stage": outcome.failed_stage, "reason": outcome.reason})
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if self.trained == 0 and self.failed >= FAILURES_BEFORE_GIVING_UP:
                raise NasError(f"the first {self.failed} trained candidates all failed; "
                               f"last: {outcome.failed_stage}: {outcome.reason}")
        else:
            from ._io import atomic_write_bytes

            self.trained += 1
            metrics = _metrics(outcome.result, self.device)
            model_path = self.models_dir / f"trial-{trial.number:05d}.tflite"
            atomic_write_bytes(model_path, outcome.result.tflite)
            _record(trial, {**metrics, "screened": False, "model": model_path.name})
            _constrain(trial, self.config, metrics)
            self.study.tell(trial, _values(self.config, metrics))
            if self.config.budgets.admits(metrics):
                self.best = max(self.best or 0.0, metrics["accuracy"])
        self.bar.update(1, self._postfix())

    def _tell_screened(self, trial, verdict) -> None:
        self.screened += 1
        self.screened_in_a_row += 1
        finite = lambda v: v if v == v else PENALTY  # noqa: E731 - NaN where the footprint was not reached
        metrics = {"size_bytes": finite(verdict.size_bytes), "peak_ram_bytes": finite(verdict.peak_ram_bytes),
                   "latency_ms": verdict.latency_ms}
        _record(trial, {"screened": True, "screen_stage": verdict.stage, "reason": verdict.reason, **metrics})
        _constrain(trial, self.config, metrics)
        self.study.tell(trial, _values(self.config, {"accuracy": 0.0, **metrics}))
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
                _record(trial, {"failed_stage": "interrupted", "reason": "the search stopped during this trial"})
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            except Exception:  # the storage itself may be what failed; a resume cleans up then
                pass
        self.inflight.clear()


def _metrics(result, device) -> dict[str, Any]:
    return {
        "accuracy": result.accuracy,
        "float_accuracy": result.float_accuracy,
        "size_bytes": result.size_bytes,
        "peak_ram_bytes": result.peak_ram_bytes,
        "peak_ram_source": result.peak_ram_source,
        "latency_ms": device.latency_ms(result),
        "host_latency_ms": result.host_latency_ms,
        "tflm_compatible": result.tflm_compatible,
        "tflm_reason": result.tflm_reason,
        "params": result.params,
        "macs": result.macs,
        "weight_sparsity": result.weight_sparsity,
        "epochs_run": result.epochs_run,
        "timings_s": json.dumps(result.timings_s),
    }


def _prepare_out_dir(out_dir: Path) -> Path:
    import os

    out_dir = Path(out_dir).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {out_dir} cannot be created: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise ConfigError(f"output folder {out_dir} cannot be written")
    return out_dir


# --- progress ---------------------------------------------------------------------------------
class _Progress:
    def __init__(self, total: int, initial: int, enabled: bool):
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc="trials", unit="trial", file=sys.stderr,
                             dynamic_ncols=True, mininterval=0.5)

    def update(self, n: int, postfix: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _best_feasible(study, config: StudyConfig) -> float | None:
    """The best proxy accuracy among stored trained trials within budget (read once, at start)."""
    from .final import trained_rows

    return max((r["accuracy"] for r in trained_rows(study) if config.budgets.admits(r)), default=None)
