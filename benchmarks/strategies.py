"""Hypervolume at equal trial count: the search strategies against each other, 3 seeds.

Strategies: Optuna's samplers (multivariate TPE, the default; NSGA-II; random) and KerasTuner's
Bayesian optimisation and Hyperband over the same space, budgets and pipeline (`nas.kerastuner`).

Runs the same study once per sampler and seed, then computes the hypervolume of the feasible
proxy trials in the budget box: each objective is normalised by its budget (accuracy as error
rate), so the reference point is (1, 1, 1, 1) and a larger hypervolume is a better front.
Latency is host wall-clock, so runs on a busy machine carry its noise.

    .venv/bin/python benchmarks/strategies.py [--trials 24] [--seeds 0 1 2] [--strategies tpe random kerastuner-bayes ...]

Only the proxy phase matters here, so each run retrains a single final candidate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np


def hypervolume(rows: list[dict], config) -> float:
    from optuna._hypervolume import compute_hypervolume

    b = config.budgets
    scale = {"accuracy": 1.0, "latency_ms": b.max_latency_ms, "size_bytes": b.max_size_kb * 1024,
             "peak_ram_bytes": b.max_ram_kb * 1024}
    points = []
    for r in rows:
        if b.feasible(r["size_bytes"], r["peak_ram_bytes"], r["latency_ms"]):
            points.append([1.0 - r["accuracy"] if o == "accuracy" else r[o] / scale[o] for o in config.objectives])
    if not points:
        return 0.0
    return float(compute_hypervolume(np.asarray(points), np.ones(len(config.objectives))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="digits_demo")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=["tpe", "nsga2", "random", "kerastuner-bayes", "kerastuner-hyperband"])
    args = parser.parse_args(argv)

    from nas import load_study, run_search
    from nas.search import open_study, trained_rows

    import dataclasses

    table: dict[str, list[float]] = {s: [] for s in args.strategies}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for sampler in args.strategies:
                config = dataclasses.replace(load_study(args.study, trials=args.trials, seed=seed, sampler=sampler), final_top_k=1)
                out = Path(tmp) / f"{sampler}-{seed}"
                summary = run_search(config, out, progress=False)
                hv = hypervolume(trained_rows(open_study(config, out)), config)
                table[sampler].append(hv)
                print(f"seed {seed} {sampler:<20} hypervolume {hv:.4f} ({summary.trained} trained, "
                      f"{summary.screened} screened, {summary.proxy_s:.0f} s)", file=sys.stderr, flush=True)
    print(f"\nHypervolume of feasible proxy trials after {args.trials} trained trials, study {args.study}, "
          f"seeds {args.seeds} (objectives normalised by the budgets; higher is better)")
    print(f"{'strategy':<20} {'mean':>7} {'stdev':>7}  per seed")
    for sampler, values in table.items():
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{sampler:<20} {statistics.mean(values):>7.4f} {sd:>7.4f}  " + " ".join(f"{v:.4f}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
