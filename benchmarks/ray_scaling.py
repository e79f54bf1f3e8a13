"""Ray scaling: trials per hour with 1, 2, ... workers, and the scaling efficiency.

Runs the same study (`digits_demo` by default, proxy phase only: final_top_k=1 with 1 final
epoch) on a local Ray started for each run with `--workers N`, one CPU per trial, and
reports trained trials per hour of the proxy phase. Efficiency = throughput(N) / (N x
throughput(1)). On this 2-core machine only 1 and 2 workers make sense; on a 16-core machine
pass --workers 1 2 4 8 16.

    .venv/bin/python benchmarks/ray_scaling.py [--workers 1 2] [--trials 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="digits_demo")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import os

    from nas import TrainConfig, load_study, run_search

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            config = load_study(args.study, trials=args.trials, seed=args.seed, sampler="random")
            config = replace(config, final_top_k=1, final=TrainConfig(epochs=1))
            summary = run_search(config, Path(tmp) / f"w{workers}", progress=False, workers=workers)
            done = summary.trained + summary.failed
            rows.append((workers, done, summary.proxy_s, 3600 * done / summary.proxy_s))
            print(f"{workers} workers: {done} trials in {summary.proxy_s:.0f} s", file=sys.stderr, flush=True)
    base = rows[0][3] / rows[0][0]
    print(f"\nRay scaling, study {args.study}, {args.trials} trials per run (random sampler, same seed), "
          f"{os.cpu_count()} CPUs, 1 CPU per trial")
    print(f"{'workers':>8} {'trials':>7} {'proxy s':>8} {'trials/hour':>12} {'efficiency':>11}")
    for workers, done, seconds, per_hour in rows:
        print(f"{workers:>8} {done:>7} {seconds:>8.0f} {per_hour:>12.0f} {per_hour / (workers * base):>11.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
