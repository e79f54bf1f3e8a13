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

    .venv/bin/python benchmarks/cluster_sim.py --workers 1 4 16 64 256 --trials 200 [--storage journal] [--json]
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


class SimulatedCluster:
    """An executor (`run_study(executor=...)`) whose workers run on a virtual clock."""

    def __init__(self, workers: int, dataset, config, landscape: Landscape):
        self.capacity = workers
        self._dataset, self._config, self._landscape = dataset, config, landscape
        self.now = 0.0  # simulated seconds
        self._mark = time.perf_counter()  # when the driver last got control back
        self._events: list = []
        self._inflight: dict[int, str] = {}
        self.busy = 0.0
        self.spans: list[tuple[float, float]] = []  # (simulated start, end) of every trial
        self.driver_ms: list[float] = []
        self.duplicates_in_flight = 0
        self.finished: list[tuple[float, int]] = []  # (simulated finish time, trial number)

    def _driver_time(self) -> float:
        t = time.perf_counter()
        spent, self._mark = t - self._mark, t
        self.now += spent
        return spent

    def submit(self, key: int, spec, proxy=None, stop_rule=None) -> None:
        from nas.search import TrialOutcome

        self.driver_ms.append(1000 * self._driver_time())
        if spec.hash in self._inflight.values():
            self.duplicates_in_flight += 1
        self._inflight[key] = spec.hash
        result = self._landscape.evaluate(spec, self._dataset, proxy or self._config.proxy)
        seconds = self._landscape.train_seconds(result)
        self.busy += seconds
        self.spans.append((self.now, self.now + seconds))
        heapq.heappush(self._events, (self.now + seconds, key, TrialOutcome("ok", result=result)))
        self._mark = time.perf_counter()  # the worker's work is not the driver's

    def wait(self):
        self._driver_time()
        finish, key, outcome = heapq.heappop(self._events)
        self.now = max(self.now, finish)
        self._inflight.pop(key, None)
        self.finished.append((self.now, key))
        self._mark = time.perf_counter()
        yield key, outcome

    def evaluate_final(self, specs: list, train_config, dataset=None) -> list:
        return [self._landscape.evaluate(spec, dataset or self._dataset, train_config, split="test") for spec in specs]

    def close(self, cancel: bool = False) -> None:
        self._events.clear()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def simulate(workers: int, trials: int, landscape: Landscape, study: str, seed: int, storage: str = "sqlite") -> dict:
    from strategies import hypervolume

    from nas import load_study
    from nas.search import load_study_dataset, open_study, run_study, trained_rows

    config = load_study(study, trials=trials, seed=seed, device="host-tflm")
    config = dataclasses.replace(config, final_top_k=1)
    cluster = SimulatedCluster(workers, load_study_dataset(config), config, landscape)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nas-cluster-sim-") as tmp:
        where = str(Path(tmp) / "study.journal") if storage == "journal" else None  # None: the default SQLite file
        summary = run_study(config, Path(tmp), progress=False, executor=cluster, storage=where)
        rows = {r["trial"]: r for r in trained_rows(open_study(config, Path(tmp), where))}
    real_s = time.perf_counter() - started
    curve, seen = [], []
    for at, number in cluster.finished:
        if number in rows:
            seen.append(rows[number])
            curve.append((at, hypervolume(seen, config)))
    makespan = cluster.finished[-1][0] if cluster.finished else 0.0
    ms = np.array(cluster.driver_ms or [0.0])
    times = summary.driver_ms
    # while trials were still being handed out: the driver's share, without the tail of the last long trials
    last = max((start for start, _ in cluster.spans), default=0.0)
    steady = sum(max(0.0, min(end, last) - start) for start, end in cluster.spans) / (workers * last) if last else 0.0
    return {"workers": workers, "storage": storage, "trials": len(rows),
            "utilisation": round(cluster.busy / (workers * makespan), 3) if makespan else 0.0,
            "utilisation_to_last_submit": round(steady, 3),
            "ask_p50_ms": times.get("ask_p50"), "ask_p99_ms": times.get("ask_p99"),
            "tell_p50_ms": times.get("tell_p50"), "tell_p99_ms": times.get("tell_p99"),
            "wait_p50_ms": round(float(np.percentile(ms, 50)), 1), "wait_p99_ms": round(float(np.percentile(ms, 99)), 1),
            "duplicates_in_flight": cluster.duplicates_in_flight, "hypervolume": round(curve[-1][1], 4) if curve else 0.0,
            "sim_wallclock_s": round(makespan, 1), "real_s": round(real_s, 1), "driver_rss_mb": round(_rss_mb(), 1),
            "curve": curve}


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
    parser.add_argument("--json", action="store_true", help="one JSON object per worker count")
    args = parser.parse_args(argv)

    from nas.logs import quiet_optuna

    quiet_optuna()
    landscape = Landscape.fit(args.record, args.seed)
    results = []
    for workers in args.workers:
        results.append(simulate(workers, args.trials, landscape, args.study, args.seed, args.storage))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
