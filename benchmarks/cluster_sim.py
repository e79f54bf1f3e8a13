"""A cluster simulated on one machine, running the real engine (issue 37): how the driver, the guided
strategy and the study storage keep up with 1 to 256 workers.

The search is the real one (`nas.search.run_study`: driver, guided strategy, SQLite storage,
records, final phase); only the workers are simulated, by an executor on a virtual clock:
- a trial "trains" for a simulated time: the proxy training time of its spec, from a linear model
  of multiply-accumulates fitted on a real run's recorded timings (`--record`, default runs/demo,
  which `make demo` writes);
- its validation accuracy comes from a landscape fitted on that run's trained trials (accuracy
  against log MACs and log parameters, clipped), plus the fit's residual noise, drawn once per spec
  and seed; its size, arena and latency are the spec's analytic figures, as the engine's tests use;
- the driver's own time (asks, tells, storage) is real and advances the virtual clock as it runs,
  so a slow ask leaves workers idle exactly as on a cluster; the footprint screen (a worker's job)
  is not simulated: every proposal trains.
No trial sleeps, so thousands of trials run in minutes. Per worker count it prints: utilisation
(busy worker-seconds over workers x makespan; and up to the last trial handed out, which leaves out
the tail where workers idle because no trial is left to give them), the driver's time per ask and per tell (p50/p99, as
the search measures them), how long a freed worker waits for its next trial (the tell and the ask
between), specs submitted while the same spec was in flight, the hypervolume of the feasible trials
in the budget box (as benchmarks/strategies.py computes it), the simulated makespan, the simulated
time to reach 1 worker's final hypervolume, the speed-up against 1 worker (the median, over the
hypervolumes 1 worker had after 1/4, 1/2, 3/4 and all of its trials, of how many times sooner this
count reached each), and the driver's RSS. `--storage journal` runs the study
on Optuna's journal file instead of the default SQLite file.

Faults (`Faults`): `--kill 0.1` kills a tenth of the workers for good at random points of the run
(the trial on a killed worker is retried once, as Ray does, and fails if its retry dies too);
`--hang 0.005` makes that share of trials never return (the driver's trial timeout frees their
workers); `--restart-at 0.5` kills the driver process (os._exit in a forked child: no handler runs,
as with kill -9) once half the trials are told, and runs the same command again on the study. Per
worker count a second table says what happened and whether anything was lost (a trial left
running, the study short of its trials) or counted twice (an outcome given twice, a spec trained
twice at one fidelity).

    .venv/bin/python benchmarks/cluster_sim.py --workers 1 4 16 64 256 --trials 200 [--storage journal] [--json]
    .venv/bin/python benchmarks/cluster_sim.py --workers 64 --trials 2000 --kill 0.1 --hang 0.005 --restart-at 0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import heapq
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).parent))


@dataclasses.dataclass(frozen=True)
class Landscape:
    """Accuracy and training time of a spec, fitted on a real run's trained trials."""

    coef: np.ndarray  # accuracy ~ 1, log MACs, log params
    noise: float  # the fit's residual standard deviation
    seconds: tuple[float, float]  # training seconds ~ a + b * MACs
    seed: int
    records: int

    @classmethod
    def fit(cls, run: Path, seed: int) -> "Landscape":
        import optuna

        from nas.search import load_run_config, open_study, trained_rows

        config = load_run_config(run)
        rows = [r for r in trained_rows(open_study(config, run))  # trained to the end: a halved trial's figure is its rung's
                if r.get("macs") and r.get("timings_s") and not r.get("halved_at")]
        if len(rows) < 5:
            raise SystemExit(f"{run}: {len(rows)} trained trials with timings; the landscape needs 5 or more "
                             "(run `make demo`, or pass --record RUN)")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        x = np.array([[1.0, np.log(r["macs"]), np.log(r["params"])] for r in rows])
        y = np.array([r["accuracy"] for r in rows])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        noise = float(np.std(y - x @ coef))
        t = np.array([sum(json.loads(r["timings_s"]).values()) for r in rows])
        b, a = np.polyfit([r["macs"] for r in rows], t, 1)
        return cls(coef, noise, (max(float(a), 0.1), max(float(b), 0.0)), seed, len(rows))

    def _draw(self, spec) -> float:
        digest = hashlib.sha256(f"{spec.hash} {self.seed}".encode()).digest()
        return float(np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(0.0, self.noise))

    def evaluate(self, spec, dataset, cfg, split="val"):
        from nas.candidate import CandidateResult
        from nas.spec import activation_peak_bytes, count_macs, count_params, weight_bytes

        c, k = dataset.channels, dataset.num_classes
        macs, params = count_macs(spec, c, k), count_params(spec, c, k)
        accuracy = float(np.clip(self.coef @ [1.0, np.log(macs), np.log(params)] + self._draw(spec), 0.05, 0.995))
        return CandidateResult(spec, dataset.name, split=split, accuracy=accuracy, float_accuracy=accuracy,
                               val_accuracy=accuracy, float_val_accuracy=accuracy, val_samples=len(dataset.y_val),
                               eval_samples=len(dataset.y_val), size_bytes=int(weight_bytes(spec, c, k)) + 4000,
                               params=params, macs=macs, peak_ram_bytes=activation_peak_bytes(spec, c, k) + 2000,
                               peak_ram_source="activation_estimate", host_latency_ms=macs / 1e6, tflm_compatible=True,
                               weight_sparsity=0.0, epochs_run=cfg.epochs, tflite=b"simulated")

    def train_seconds(self, result) -> float:
        return self.seconds[0] + self.seconds[1] * result.macs


@dataclasses.dataclass(frozen=True)
class Faults:
    """What goes wrong on the simulated cluster: `kill` of the workers die, one at a time, at random
    points between a tenth and nine tenths of the run (a node lost: for good; the trial on it is
    retried once, as Ray does, and fails if its retry dies too); `hang` of the trials never return
    (the driver's trial timeout must free their workers); `restart_at`: the driver is killed (as by
    kill -9: nothing cleaned up) once that share of the trials is told, and started again on the study."""

    kill: float = 0.0
    hang: float = 0.0
    restart_at: float | None = None

    def __bool__(self) -> bool:
        return bool(self.kill or self.hang or self.restart_at)


class SimulatedCluster:
    """An executor (`run_study(executor=...)`) whose workers run on a virtual clock. Trials wait in a
    queue for a live worker, as Ray's tasks do when the cluster has fewer CPUs than trials in flight."""

    def __init__(self, workers: int, dataset, config, landscape: Landscape, trials: int, faults: Faults = Faults(),
                 seed: int = 0, before: dict | None = None, die_after: int | None = None, dump: Path | None = None):
        from collections import deque

        self.capacity = workers
        self._dataset, self._config, self._landscape = dataset, config, landscape
        before = before or {}  # the first driver's totals, when this one is its restart: same cluster, same clock
        self.now = before.get("now", 0.0)  # simulated seconds
        self._mark = time.perf_counter()  # when the driver last got control back
        self._events: list = []  # (finish time, key, attempt)
        self._tasks: dict[int, dict] = {}  # key -> spec hash, outcome, seconds, submitted, attempts, hung, worker, started
        self._queue = deque()  # keys waiting for a worker
        self._live = set(range(workers)) - set(before.get("dead", ()))
        self._idle = sorted(self._live)
        self._rng = np.random.default_rng([seed, workers, 37])
        kills = int(round(faults.kill * workers))
        self._kill_at = sorted(int(k) for k in self._rng.integers(trials // 10, max(trials * 9 // 10, trials // 10 + 1), kills))
        self._kill_at = self._kill_at[before.get("faults", {}).get("workers_killed", 0):]  # the rest of the same plan
        self._told = len(before.get("finished", ()))  # outcomes the first driver was given
        self._rng = np.random.default_rng([seed, workers, 37, self._told])
        self._hang = faults.hang
        self._die_after, self._dump = die_after, dump
        self.busy = self.wasted = 0.0
        self.worker_s = 0.0  # worker-seconds of workers that died (the live ones' are added at the end)
        self.spans: list[tuple[float, float]] = []  # (simulated start, end) of every attempt, finished or not
        self.driver_ms: list[float] = []
        self.duplicates_in_flight = 0
        self.finished: list[tuple[float, int]] = []  # (simulated time, trial number) of every outcome given
        self.given: dict[int, int] = {}  # trial number -> outcomes given (1 each, or a trial counted twice)
        self.faults = {"workers_killed": 0, "retried": 0, "failed_worker": 0, "hung": 0, "timed_out": 0}
        self.start = self.now

    def _driver_time(self) -> float:
        t = time.perf_counter()
        spent, self._mark = t - self._mark, t
        self.now += spent
        return spent

    def submit(self, key: int, spec, proxy=None, stop_rule=None) -> None:
        from nas.search import TrialOutcome

        self.driver_ms.append(1000 * self._driver_time())
        if any(t["hash"] == spec.hash for t in self._tasks.values()):
            self.duplicates_in_flight += 1
        result = self._landscape.evaluate(spec, self._dataset, proxy or self._config.proxy)
        seconds = self._landscape.train_seconds(result)
        result = dataclasses.replace(result, timings_s={"train": round(seconds, 3)})
        hung = bool(self._hang and self._rng.random() < self._hang)
        self.faults["hung"] += hung
        self._tasks[key] = {"hash": spec.hash, "outcome": TrialOutcome("ok", result=result), "seconds": seconds,
                            "submitted": self.now, "attempts": 0, "hung": hung, "worker": None, "started": None}
        self._queue.append(key)
        self._dispatch()
        self._mark = time.perf_counter()  # the worker's work is not the driver's

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            key, worker = self._queue.popleft(), self._idle.pop()
            task = self._tasks[key]
            task["worker"], task["started"] = worker, self.now
            if not task["hung"]:
                heapq.heappush(self._events, (self.now + task["seconds"], key, task["attempts"]))

    def _stop(self, key: int, wasted: bool) -> dict:
        """The task off its worker (if on one) and out of the queue; its worker's time accounted."""
        task = self._tasks.pop(key)
        if task["worker"] is not None:
            self.busy += self.now - task["started"]
            self.wasted += (self.now - task["started"]) if wasted else 0.0
            self.spans.append((task["started"], self.now))
            if task["worker"] in self._live:
                self._idle.append(task["worker"])
        elif key in self._queue:
            self._queue.remove(key)
        return task

    def _give(self, key: int, outcome):
        self.given[key] = self.given.get(key, 0) + 1
        self.finished.append((self.now, key))
        if self._die_after is not None and len(self.finished) >= self._die_after:
            self._die()  # before the driver tells this one: it is in flight too
        return key, outcome

    def _kill_one(self):
        """A random live worker dies: its trial is retried once (queued again), or fails if this was its retry."""
        from nas.search import lost_worker

        self._kill_at.pop(0)
        worker = int(self._rng.choice(sorted(self._live)))
        self._live.discard(worker)
        self.faults["workers_killed"] += 1
        self.worker_s += self.now - self.start
        if worker in self._idle:
            self._idle.remove(worker)
            return None
        key = next(k for k, t in self._tasks.items() if t["worker"] == worker)
        task = self._stop(key, wasted=True)
        if task["attempts"] == 0:  # Ray's one retry: the task runs again from the start, on another worker
            self.faults["retried"] += 1
            self._tasks[key] = {**task, "attempts": 1, "worker": None, "started": None}
            self._queue.appendleft(key)
            self._dispatch()
            return None
        self.faults["failed_worker"] += 1
        self._dispatch()
        return self._give(key, lost_worker("NodeDiedError"))

    def wait(self, timeout_s: float | None = None):
        from nas.search import timed_out

        self._driver_time()
        while True:
            if self._kill_at and self._told + len(self.finished) >= self._kill_at[0]:
                given = self._kill_one()
                if given:
                    break
                continue
            # counted from when the trial started on a worker, as Ray's executor counts it (not while queued)
            late = min(((t["started"] + timeout_s, k) for k, t in self._tasks.items() if t["started"] is not None),
                       default=None) if timeout_s is not None else None
            if late and (not self._events or late[0] <= self._events[0][0]):
                self.now = max(self.now, late[0])
                self.faults["timed_out"] += 1
                self._stop(late[1], wasted=True)
                self._dispatch()
                given = self._give(late[1], timed_out(timeout_s))
                break
            if not self._events:
                raise RuntimeError("a trial hangs and the driver gave no timeout: the search would wait for ever")
            finish, key, attempt = heapq.heappop(self._events)
            task = self._tasks.get(key)
            if task is None or task["attempts"] != attempt:  # a killed or timed-out attempt's end
                continue
            self.now = max(self.now, finish)
            self._stop(key, wasted=False)
            self._dispatch()
            given = self._give(key, task["outcome"])
            break
        self._mark = time.perf_counter()
        yield given

    def _die(self) -> None:
        """The driver killed (os._exit: no handler, no finally, as kill -9): what the run did is dumped first."""
        in_flight = len(self._tasks) + 1
        for key in list(self._tasks):  # the work on the workers is lost with the driver (Ray ends a dead driver's tasks)
            self._stop(key, wasted=True)
        self._dump.write_text(json.dumps({**self.totals(), "in_flight_at_death": in_flight}))
        os._exit(0)

    def totals(self) -> dict:
        live = len(self._live) * (self.now - self.start)
        return {"now": self.now, "dead": sorted(set(range(self.capacity)) - self._live), "busy": self.busy, "wasted": self.wasted, "worker_s": self.worker_s + live,
                "spans": self.spans, "driver_ms": self.driver_ms, "duplicates_in_flight": self.duplicates_in_flight,
                "finished": self.finished, "given": {str(k): v for k, v in self.given.items()}, "faults": self.faults}

    def evaluate_final(self, specs: list, train_config, dataset=None) -> list:
        return [self._landscape.evaluate(spec, dataset or self._dataset, train_config, split="test") for spec in specs]

    def close(self, cancel: bool = False) -> None:
        self._events.clear()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def simulate(workers: int, trials: int, landscape: Landscape, study: str, seed: int, storage: str = "sqlite",
             faults: Faults = Faults()) -> dict:
    from strategies import hypervolume

    from nas import load_study
    from nas.search import load_study_dataset, open_study, run_study, trained_rows

    config = load_study(study, trials=trials, seed=seed, device="host-tflm")
    config = dataclasses.replace(config, final_top_k=1)
    dataset = load_study_dataset(config)
    started = time.perf_counter()
    phases = []
    with tempfile.TemporaryDirectory(prefix="nas-cluster-sim-") as tmp:
        where = str(Path(tmp) / "study.journal") if storage == "journal" else None  # None: the default SQLite file
        if faults.restart_at:  # the first driver runs in a child process that dies as by kill -9
            dump = Path(tmp) / "first-driver.json"
            pid = os.fork()
            if pid == 0:
                try:
                    run_study(config, Path(tmp), progress=False, storage=where, executor=SimulatedCluster(
                        workers, dataset, config, landscape, trials, faults, seed, die_after=int(faults.restart_at * trials),
                        dump=dump))
                except BaseException:
                    import traceback

                    traceback.print_exc()
                finally:
                    os._exit(3)  # the driver was to die before the end
            _, status = os.waitpid(pid, 0)
            if status or not dump.exists():
                raise SystemExit(f"the first driver did not die as planned (wait status {status})")
            phases.append(json.loads(dump.read_text()))
        # the second driver (or the only one) starts at once, on the same cluster, where the first one died
        cluster = SimulatedCluster(workers, dataset, config, landscape, trials, faults, seed,
                                   before=phases[0] if phases else None)
        summary = run_study(config, Path(tmp), progress=False, executor=cluster, storage=where)
        phases.append(cluster.totals())
        study_trials = open_study(config, Path(tmp), where).get_trials(deepcopy=False)
        rows = {r["trial"]: r for r in trained_rows(open_study(config, Path(tmp), where))}
    real_s = time.perf_counter() - started
    finished = [tuple(f) for phase in phases for f in phase["finished"]]
    curve, seen = [], []
    for at, number in finished:
        if number in rows:
            seen.append(rows[number])
            curve.append((at, hypervolume(seen, config)))
    makespan = finished[-1][0] if finished else 0.0
    busy, worker_s = sum(p["busy"] for p in phases), sum(p["worker_s"] for p in phases)
    spans = [tuple(span) for phase in phases for span in phase["spans"]]
    ms = np.array([m for phase in phases for m in phase["driver_ms"]] or [0.0])
    times = summary.driver_ms
    # while trials were still being handed out: the driver's share, without the tail of the last long trials
    last = max((start for start, _ in spans), default=0.0)
    steady = sum(max(0.0, min(end, last) - start) for start, end in spans) / (workers * last) if last else 0.0
    out = {"workers": workers, "storage": storage, "trials": len(rows),
           "utilisation": round(busy / worker_s, 3) if worker_s else 0.0,
           "utilisation_to_last_submit": round(steady, 3),
           "ask_p50_ms": times.get("ask_p50"), "ask_p99_ms": times.get("ask_p99"),
           "tell_p50_ms": times.get("tell_p50"), "tell_p99_ms": times.get("tell_p99"),
           "wait_p50_ms": round(float(np.percentile(ms, 50)), 1), "wait_p99_ms": round(float(np.percentile(ms, 99)), 1),
           "duplicates_in_flight": sum(p["duplicates_in_flight"] for p in phases),
           "hypervolume": round(curve[-1][1], 4) if curve else 0.0,
           "sim_wallclock_s": round(makespan, 1), "real_s": round(real_s, 1), "driver_rss_mb": round(_rss_mb(), 1),
           "curve": curve}
    if faults:
        out.update(_fault_figures(phases, study_trials, trials, busy))
    return out


def _fault_figures(phases: list[dict], study_trials: list, trials: int, busy: float) -> dict:
    """What the faults did, and whether anything was lost or counted twice: every trial the study holds
    is finished (none left running), each outcome was given once per trial and driver, the study holds
    the trials asked for, and no spec was trained twice at one fidelity."""
    counts: dict[str, int] = {}
    for phase in phases:
        for key, n in phase["faults"].items():
            counts[key] = counts.get(key, 0) + n
    states = [t.state.name for t in study_trials]
    stages = [t.user_attrs.get("failed_stage") for t in study_trials if t.state.name == "FAIL"]
    complete = [(t.user_attrs.get("spec_hash"), t.user_attrs.get("proxy_epochs")) for t in study_trials
                if t.state.name == "COMPLETE" and not t.user_attrs.get("screened")]
    interrupted = {t.user_attrs.get("spec_hash") for t in study_trials if t.state.name == "FAIL"
                   and t.user_attrs.get("failed_stage") == "interrupted"}
    trained_hashes = {h for h, _ in complete}
    failed = sum(stage in ("worker", "timeout") for stage in stages)
    return {**counts, "in_flight_at_restart": phases[0].get("in_flight_at_death", 0) if len(phases) > 1 else 0,
            "interrupted": stages.count("interrupted"), "interrupted_retrained": len(interrupted & trained_hashes),
            "left_running": states.count("RUNNING"),
            "counted_twice": sum(n > 1 for phase in phases for n in phase["given"].values())
                             + len(complete) - len(set(complete)),
            "study_full": len(complete) + failed >= trials,
            "wasted_share": round(sum(p["wasted"] for p in phases) / busy, 4) if busy else 0.0}


def _speedup(one: list[tuple[float, float]], many: list[tuple[float, float]]) -> float | None:
    """How many times sooner `many` reaches the hypervolume `one` (1 worker) had after a quarter, half,
    three quarters and all of its trials: the median of the four ratios (one lucky spec decides any
    single target), over the targets `many` reaches."""
    ratios = []
    for q in (0.25, 0.5, 0.75, 1.0):
        at_one, target = one[max(0, int(q * len(one)) - 1)]
        at_many = _time_to(many, target)
        if at_many:
            ratios.append(_time_to(one, target) / at_many)
    return round(float(np.median(ratios)), 2) if ratios else None


def _time_to(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((at for at, hv in curve if hv >= target - 1e-12), None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--study", default="digits_demo")
    parser.add_argument("--record", type=Path, default=Path("runs/demo"), help="a finished run: the landscape's data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", choices=("sqlite", "journal"), default="sqlite",
                        help="the study's storage: the default SQLite file, or Optuna's journal file")
    parser.add_argument("--kill", type=float, default=0.0, metavar="SHARE",
                        help="workers killed at random during the run (0.1: a tenth), each for good")
    parser.add_argument("--hang", type=float, default=0.0, metavar="SHARE", help="trials that never return")
    parser.add_argument("--restart-at", type=float, metavar="SHARE",
                        help="kill the driver (as kill -9) once this share of the trials is told, and start it again")
    parser.add_argument("--json", action="store_true", help="one JSON object per worker count")
    args = parser.parse_args(argv)
    faults = Faults(args.kill, args.hang, args.restart_at)
    if not (0 <= args.kill < 1 and 0 <= args.hang < 1 and (args.restart_at is None or 0 < args.restart_at < 1)):
        parser.error("--kill and --hang take a share in [0, 1), --restart-at one in (0, 1)")

    from nas.logs import quiet_optuna

    quiet_optuna()
    landscape = Landscape.fit(args.record, args.seed)
    results = []
    for workers in args.workers:
        results.append(simulate(workers, args.trials, landscape, args.study, args.seed, args.storage, faults))
        print(f"simulated {workers} worker(s): {results[-1]['real_s']} s", file=sys.stderr, flush=True)
    one = next((r for r in results if r["workers"] == 1), None)
    target = one["curve"][-1][1] if one and one["curve"] else None  # 1 worker's final hypervolume, unrounded
    first = _time_to(one["curve"], target) if target is not None else None
    for r in results:
        at = _time_to(r["curve"], target) if target is not None else None
        r["time_to_1_worker_hv_s"] = round(at, 1) if at is not None else None
        r["speedup_vs_1_worker"] = _speedup(one["curve"], r["curve"]) if one else None
    if args.json:
        for r in results:
            print(json.dumps({k: v for k, v in r.items() if k != "curve"}))
        return 0
    print(f"landscape: {landscape.records} trained trials of {args.record} (accuracy residual sd {landscape.noise:.3f}; "
          f"training {landscape.seconds[0]:.2f} s + {landscape.seconds[1] * 1e6:.2f} s per million MACs)")
    print(f"storage: {args.storage}")
    print("| workers | trials | utilisation (to the last submit) | ask ms p50 / p99 | tell ms p50 / p99 | worker waits ms p50 / p99 | "
          "duplicates in flight | hypervolume | simulated s | to 1 worker's HV s | speed-up | real s | driver RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['workers']} | {r['trials']} | {r['utilisation']:.1%} ({r['utilisation_to_last_submit']:.1%}) | {r['ask_p50_ms']} / {r['ask_p99_ms']} | "
              f"{r['tell_p50_ms']} / {r['tell_p99_ms']} | {r['wait_p50_ms']} / {r['wait_p99_ms']} | "
              f"{r['duplicates_in_flight']} | {r['hypervolume']} | {r['sim_wallclock_s']:,} | "
              f"{r['time_to_1_worker_hv_s'] if r['time_to_1_worker_hv_s'] is not None else 'not reached'} | "
              f"{r['speedup_vs_1_worker'] or '—'} | {r['real_s']} | {r['driver_rss_mb']} |")
    if faults:
        print(f"\nfaults: {args.kill:.0%} of the workers killed, {args.hang:.1%} of the trials hang"
              + (f", the driver killed and restarted after {args.restart_at:.0%} of the trials" if args.restart_at else ""))
        print("| workers | killed | retried | failed (died twice) | hung | timed out | in flight at restart | interrupted "
              "(retrained) | left running | counted twice | study full | wasted work |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['workers']} | {r['workers_killed']} | {r['retried']} | {r['failed_worker']} | {r['hung']} | "
                  f"{r['timed_out']} | {r['in_flight_at_restart']} | {r['interrupted']} ({r['interrupted_retrained']}) | "
                  f"{r['left_running']} | {r['counted_twice']} | {'yes' if r['study_full'] else 'NO'} | {r['wasted_share']:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
