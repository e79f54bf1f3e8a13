"""Search throughput on Fashion-MNIST-shaped data: trials per hour with the default proxy settings.

Writes generated data of the real shape and format (60,000 + 10,000 28x28 grey images, 10
classes, the four IDX .gz files) to a temporary folder, runs `studies/fashion_mnist.yaml`
with its own proxy settings for a few trials, and reports the proxy phase's throughput (the
final retraining is skipped: final_top_k=1 with 1 epoch). Real Fashion-MNIST trains the same
amount of data per trial, so the figure carries over; accuracy does not.

    .venv/bin/python benchmarks/search_throughput.py [--trials 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np


def generate(folder: Path, seed: int = 0) -> None:
    from nas.data import write_idx

    rng = np.random.default_rng(seed)
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 60, (n, 28, 28))
        for c in range(10):  # a learnable class signal: a bright band per class
            x[y == c, 2 * c + 4 : 2 * c + 8, :] += 150
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.clip(x, 0, 255))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from nas import TrainConfig, load_study, run_search

    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "out"
        data.mkdir()
        generate(data, args.seed)
        config = load_study("fashion_mnist", trials=args.trials, seed=args.seed, data_dir=str(data))
        config = replace(config, final_top_k=1, final=TrainConfig(epochs=1))
        summary = run_search(config, out, progress=True)
    per_trial = summary.proxy_s / max(1, summary.trained + summary.failed)
    print(f"\nFashion-MNIST-shaped search, {config.space}, proxy {config.proxy.epochs} epochs on "
          f"{config.proxy.max_train_samples} samples (batch {config.proxy.batch_size}), budgets "
          f"{config.budgets.max_size_kb} KB / {config.budgets.max_ram_kb} KB / {config.budgets.max_latency_ms} ms")
    print(f"{'trained':>8} {'failed':>7} {'screened':>9} {'proxy phase s':>14} {'s/trial':>8} {'trials/hour':>12}")
    print(f"{summary.trained:>8} {summary.failed:>7} {summary.screened:>9} {summary.proxy_s:>14.0f} {per_trial:>8.1f} "
          f"{3600 / per_trial:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
