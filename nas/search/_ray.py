"""Ray adapter: trials as Ray tasks, the study and the sampler stay with the driver.

The only module that imports Ray. A task runs `run_trial` (footprint screen, proxy
training, measurement) on a worker and returns plain data; the dataset travels once through
Ray's object store, so workers need the package installed but not the data files. A worker
that dies mid-trial is retried once by Ray (`max_retries=1`); if it dies again the trial is
failed with that reason and the search goes on. A trial with no result within the timeout the
driver gave it is cancelled (its worker process killed; Ray does not retry a cancelled task) and
failed as timed out.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable, Iterator

from ..errors import ConfigError, DependencyError
from ._faults import lost_worker, timed_out
from ._trial import TrialOutcome, run_final, run_trial

__all__ = ["RayExecutor"]

INSTALL = "pip install 'tinyml-nas[ray]'  (ray[tune]==2.60.*)"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise DependencyError(f"Ray is not installed; install it with: {INSTALL}") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail in seconds, with one clear line, when a head's host:port does not answer."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r}: expected host:port (e.g. 10.0.0.5:6379), 'auto' or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"the Ray head at {address} is not reachable: {exc.strerror or exc}") from None


def _thread_env(cpus: float) -> dict[str, str]:
    threads = str(max(1, int(cpus)))
    return {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": threads,
            "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"}


def _trial_task(spec, dataset, config, evaluate, proxy=None, stop_rule=None):
    return run_trial(spec, dataset, config, evaluate, proxy, stop_rule)


def _final_task(spec, dataset, train_config, evaluate):
    return run_final(spec, dataset, train_config, evaluate)


class RayExecutor:
    def __init__(self, dataset, config, *, evaluate: Callable | None = None, address: str | None = None,
                 workers: int | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0):
        ray = _import_ray()
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers: expected a positive integer, got {workers}")
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise ConfigError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        self._ray = ray
        self._started_here = False
        env = {"env_vars": _thread_env(cpus_per_trial)}
        if address is not None:
            _check_reachable(address)
            try:
                ray.init(address=address, runtime_env=env, log_to_driver=False, logging_level="ERROR")
            except Exception as exc:
                raise ConfigError(f"cannot join the Ray cluster at {address}: {' '.join(str(exc).split())[:200]}") from None
        else:
            # A local Ray for this run only: loopback addresses, no dashboard.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(num_cpus=int(workers * cpus_per_trial) or 1, num_gpus=0 if not gpus_per_trial else None,
                     include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env=env,
                     log_to_driver=False, logging_level="ERROR", object_store_memory=256 * 1024 * 1024)
            self._started_here = True
        total = ray.cluster_resources().get("CPU", 1)
        self.capacity = int(workers or max(1, total // cpus_per_trial))
        options = {"num_cpus": cpus_per_trial, "num_gpus": gpus_per_trial, "max_retries": 1}
        self._trial = ray.remote(**options)(_trial_task)
        self._final = ray.remote(**options)(_final_task)
        self._dataset = ray.put(dataset)
        self._config, self._evaluate = config, evaluate
        self._pending: dict[Any, int] = {}
        self._started: dict[Any, float] = {}  # ref -> when it could start running, as far as the driver can tell
        self._per_trial = (cpus_per_trial, gpus_per_trial)

    def submit(self, key: int, spec, proxy=None, stop_rule=None) -> None:
        ref = self._trial.remote(spec, self._dataset, self._config, self._evaluate, proxy, stop_rule)
        self._pending[ref] = key

    def _clock(self) -> float:
        """Start the clock of the trials that can be running now: Ray runs the oldest first, as many as the
        cluster's resources hold at the moment (nodes come and go; `--workers` may exceed them), so a
        trial's clock starts when it enters that window, not while it waits in Ray's queue."""
        resources, (cpus, gpus) = self._ray.cluster_resources(), self._per_trial
        fits = resources.get("CPU", 0.0) / cpus
        if gpus:
            fits = min(fits, resources.get("GPU", 0.0) / gpus)
        now = time.monotonic()
        for ref in list(self._pending)[:max(1, int(fits))]:  # in submission order
            self._started.setdefault(ref, now)
        return now

    def wait(self, timeout_s: float | None = None) -> Iterator[tuple[int, TrialOutcome]]:
        """The next finished trial, or the trials with no result `timeout_s` after they could start
        (cancelled, failed as timed out)."""
        ray = self._ray
        while True:
            now = self._clock() if timeout_s is not None else time.monotonic()
            late = [ref for ref, at in self._started.items() if timeout_s is not None and at + timeout_s <= now]
            done, _ = ray.wait(late, num_returns=len(late), timeout=0) if late else ([], [])
            if done:  # finished in time, not collected yet
                break
            if late:
                for ref in late:
                    del self._started[ref]
                    ray.cancel(ref, force=True)
                    yield self._pending.pop(ref), timed_out(timeout_s)
                return
            # with a timeout, look again at least every 30 s: a queued trial may have started meanwhile
            first = min(self._started.values(), default=now) + timeout_s if timeout_s is not None else None
            done, _ = ray.wait(list(self._pending), num_returns=1,
                               timeout=None if first is None else min(30.0, max(0.0, first - now)))
            if done:
                break
        for ref in done:
            key = self._pending.pop(ref)
            self._started.pop(ref, None)
            try:
                yield key, ray.get(ref)
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                    ray.exceptions.ObjectLostError) as exc:
                yield key, lost_worker(type(exc).__name__)
            except ray.exceptions.RayTaskError as exc:  # an unexpected error inside the task
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                yield key, TrialOutcome("failed", failed_stage="worker", reason=" ".join(str(cause).split())[:300])

    def evaluate_final(self, specs: list, train_config, dataset=None) -> list:
        """Final results in the order of `specs`. A worker that dies is retried once by Ray; one that
        dies again gives a failed result with the reason, so the search still writes its outputs."""
        from ..candidate import CandidateResult

        ray = self._ray
        data = self._dataset if dataset is None else ray.put(dataset)  # with a teacher's outputs: put once
        refs = [self._final.remote(spec, data, train_config, self._evaluate) for spec in specs]
        results = []
        for spec, ref in zip(specs, refs):
            try:
                results.append(ray.get(ref))
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
                lost = lost_worker(type(exc).__name__, final=True)
                results.append(CandidateResult(spec, "", status="failed", failed_stage="worker", split="test",
                                               reason=lost.reason))
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                results.append(CandidateResult(spec, "", status="failed", failed_stage="worker", split="test",
                                               reason=" ".join(str(cause).split())[:300]))
        return results

    def close(self, cancel: bool = False) -> None:
        ray = self._ray
        if cancel:
            for ref in list(self._pending):
                ray.cancel(ref, force=True)
        self._pending.clear()
        self._started.clear()
        if ray.is_initialized():
            ray.shutdown()
