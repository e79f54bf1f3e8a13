"""Strategies against each other: hypervolume at equal trained trials and at equal wall-clock.

Runs the same study once per strategy and seed and computes the hypervolume of the feasible
proxy trials in the budget box: each objective normalised by its budget (accuracy as error rate),
so the reference point is (1, 1, ..., 1) and a larger hypervolume is a better front. On a board
device latency is predicted (deterministic); on a host device it is wall-clock and carries the
machine's noise.

    .venv/bin/python benchmarks/strategies.py --trials 12 --seeds 0 1 2 3 4 \\
        --strategies optuna random kerastuner-bayes --random-at 24 --budget-s auto [--json out.json]

`optuna` is the engine's default strategy, whatever it is. `--random-at N` runs random search to N
trained trials (its first `--trials` are the random row at equal trials; the best accuracy at N is
the "random at N" figure). `--budget-s S` also runs the default strategy for S seconds of search;
`auto` gives it, per seed, the time random search took for its N trials, measured in the same
process just before. Only the proxy phase matters here: each run retrains one final candidate for
two epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np


def hypervolume(rows: list[dict], config) -> float:
    from optuna._hypervolume import compute_hypervolume  # a benchmark may use Optuna's own, exact

    b = config.budgets
    scale = {"accuracy": 1.0, "latency_ms": b.max_latency_ms, "size_bytes": b.max_size_kb * 1024,
             "peak_ram_bytes": b.max_ram_kb * 1024, "energy_uj": b.max_energy_uj}
    points = []
    for r in rows:
        if b.admits(r):
            points.append([1.0 - r["accuracy"] if o == "accuracy" else r[o] / scale[o] for o in config.objectives])
    if not points:
        return 0.0
    return float(compute_hypervolume(np.asarray(points), np.ones(len(config.objectives))))


def best_accuracy(rows: list[dict], config) -> float:
    return max((r["accuracy"] for r in rows if config.budgets.admits(r)), default=0.0)


def _run(study: str, strategy: str, seed: int, trials: int, out: Path, budget_s: float | None = None):
    from nas import load_study, run_search
    from nas.search import open_study, trained_rows

    config = load_study(study, trials=trials, seed=seed, sampler=strategy)  # "optuna": the engine's default
    final = dataclasses.replace(config.final, epochs=2, patience=1, qat="off", teacher="none")
    config = dataclasses.replace(config, final_top_k=1, final=final)
    summary = run_search(config, out, progress=False, time_budget_s=budget_s)
    rows = sorted(trained_rows(open_study(config, out)), key=lambda r: r["trial"])
    return config, rows, summary


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan")


def _proxies(rows: list[dict], config) -> dict[str, float]:
    """Spearman of training-free proxies and of the surrogate (leave-one-out) against proxy accuracy."""
    from nas.data import load_dataset
    from nas.latency import load_device
    from nas.search import Estimator
    from nas.search import fit_surrogate  # the engine's own surrogate
    from nas.spec import ArchSpec

    data = load_dataset(config.dataset, seed=config.seed)
    estimator = Estimator(config, config.search_space(), load_device(config.device), data.channels, data.num_classes)
    est = [estimator.estimate(ArchSpec.from_json(r["spec"])) for r in rows]
    acc = np.array([r["accuracy"] for r in rows])
    x = np.array([e.descriptor for e in est])
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    loo = []
    for i in range(len(rows)):
        keep = np.arange(len(rows)) != i
        loo.append(float(fit_surrogate(x[keep], acc[keep], 0)(x[i:i + 1])[0][0]))
    return {"log params": _spearman([e.descriptor[0] for e in est], acc),
            "log MACs": _spearman([e.descriptor[1] for e in est], acc),
            "surrogate (leave-one-out)": _spearman(loo, acc)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="digits_demo")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--strategies", nargs="+", default=["optuna", "random", "kerastuner-bayes"])
    parser.add_argument("--random-at", type=int, default=None, help="run random search to this many trained trials")
    parser.add_argument("--budget-s", default=None, help="seconds for the default strategy, or 'auto'")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    if args.budget_s == "auto" and (not args.random_at or "random" not in args.strategies):
        parser.error("--budget-s auto needs random among --strategies and --random-at (the time random search "
                     "takes for that many trials)")

    hv: dict[str, list[float]] = {}
    best: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    random_rows: list[dict] = []
    config = None

    def add(name: str, value_hv: float, value_best: float, secs: float, n: int) -> None:
        hv.setdefault(name, []).append(value_hv)
        best.setdefault(name, []).append(value_best)
        seconds.setdefault(name, []).append(secs)
        counts.setdefault(name, []).append(n)

    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            random_s = None
            for strategy in args.strategies:
                trials = max(args.trials, args.random_at or 0) if strategy == "random" else args.trials
                config, rows, summary = _run(args.study, strategy, seed, trials, Path(tmp) / f"{strategy}-{seed}")
                # seconds: the whole run's (for random, the time of its --random-at trials)
                add(strategy, hypervolume(rows[:args.trials], config), best_accuracy(rows[:args.trials], config),
                    summary.proxy_s, min(len(rows), args.trials))
                if strategy == "random" and args.random_at:
                    random_s = summary.proxy_s
                    random_rows += rows
                    add(f"random at {args.random_at}", hypervolume(rows, config), best_accuracy(rows, config), random_s, len(rows))
                print(f"seed {seed} {strategy:<18} hv {hv[strategy][-1]:.4f} best {best[strategy][-1]:.3f} "
                      f"({summary.trained} trained, {summary.screened} screened, {summary.proxy_s:.0f} s)", file=sys.stderr, flush=True)
            if args.budget_s:
                budget = random_s if args.budget_s == "auto" else float(args.budget_s)
                name = f"optuna in {'random ' + str(args.random_at) + ' time' if args.budget_s == 'auto' else args.budget_s + ' s'}"
                config, rows, summary = _run(args.study, "optuna", seed, 10 * args.trials, Path(tmp) / f"budget-{seed}", budget)
                add(name, hypervolume(rows, config), best_accuracy(rows, config), summary.proxy_s, len(rows))
                print(f"seed {seed} {name} ({budget:.0f} s): hv {hv[name][-1]:.4f}, {len(rows)} trained", file=sys.stderr, flush=True)

    def line(name: str, values: list[float], fmt: str = ".4f") -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{name:<28} {statistics.mean(values):>8{fmt}} {sd:>8{fmt}}  " + " ".join(f"{v:{fmt}}" for v in values)

    print(f"\nStudy {args.study}, seeds {args.seeds}; hypervolume of the feasible proxy trials (objectives over "
          f"their budgets; higher is better), at {args.trials} trained trials unless named")
    print(f"{'strategy':<28} {'mean':>8} {'stdev':>8}  per seed")
    for name, values in hv.items():
        print(line(name, values))
    print("\nBest feasible proxy accuracy")
    for name, values in best.items():
        print(line(name, values, ".3f"))
    print("\nTrained trials and seconds of search (mean; random's seconds are those of its whole run)")
    for name in hv:
        print(f"{name:<28} {statistics.mean(counts[name]):>8.1f} {statistics.mean(seconds[name]):>8.0f} s")
    base = hv.get("random")
    if base:
        print("\nRatio to random search's hypervolume at equal trials (mean of per-seed ratios)")
        for name, values in hv.items():
            if name != "random":
                ratios = [v / b for v, b in zip(values, base) if b > 0]
                print(f"{name:<28} {statistics.mean(ratios):>8.3f}")
    spearman = {}
    if random_rows and config is not None:
        spearman = _proxies(random_rows, config)
        print(f"\nSpearman against proxy accuracy over random search's {len(random_rows)} trained trials")
        for name, value in spearman.items():
            print(f"{name:<28} {value:>8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"hv": hv, "best": best, "seconds": seconds, "counts": counts,
                                               "spearman": spearman, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
