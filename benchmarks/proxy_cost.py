"""Proxy training time of one small spec on digits in this checkout (issue 13: the proxy may not get
more than 10% slower). Run it alternately from two checkouts to compare them:

    PYTHONPATH=<checkout> python benchmarks/proxy_cost.py <label>     # prints "<label> <seconds>" per training
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPEC = {"resolution": 16, "stem_channels": 16, "stem_stride": 1, "head_channels": 64,
        "stages": [{"depth": 1, "channels": 16, "expansion": 1, "kernel": 3, "stride": 1},
                   {"depth": 2, "channels": 32, "expansion": 4, "kernel": 3, "stride": 2},
                   {"depth": 1, "channels": 48, "expansion": 4, "kernel": 3, "stride": 2}]}  # tests/helpers.py TINY_SPEC


def main(label: str = "this", repeats: int = 3) -> int:
    from nas.candidate import TrainConfig, train_candidate
    from nas.data import load_dataset, prepare
    from nas.spec import ArchSpec

    spec = ArchSpec.from_dict(SPEC)
    d = load_dataset("digits")
    x, xv = prepare(d.x_train, 16, 1), prepare(d.x_val, 16, 1)
    train_candidate(spec, x, d.y_train, xv, d.y_val, 10, TrainConfig(epochs=1), d.class_weights())  # warm-up: tracing
    for seed in range(repeats):
        started = time.perf_counter()
        train_candidate(spec, x, d.y_train, xv, d.y_val, 10, TrainConfig(epochs=4, patience=10, seed=seed), d.class_weights())
        print(label, round(time.perf_counter() - started, 3), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
