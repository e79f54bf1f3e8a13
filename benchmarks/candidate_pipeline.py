"""Time per candidate spent outside training (conversion, evaluation, measurement), per mode.

Samples specs from `mobilenet_tiny`, trains each once briefly on `digits` (training time is not
what is measured here), then converts, evaluates on the validation split with LiteRT and measures
(TFLite Micro arena bisection, host latency) in every quantization mode. Target: <= 5 s per
candidate on the 2-core development machine.

    .venv/bin/python benchmarks/candidate_pipeline.py [--specs 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", default="mobilenet_tiny")
    args = parser.parse_args(argv)

    from nas import QUANT_MODES, TrainConfig, evaluate_modes, load_dataset, load_space

    space, dataset = load_space(args.space), load_dataset("digits")
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[dict]] = {mode: [] for mode in QUANT_MODES}
    started = time.perf_counter()
    for i in range(args.specs):
        spec = space.sample(rng).replace(sparsity=0.0)
        for r in evaluate_modes(spec, dataset, TrainConfig(epochs=1, max_train_samples=256), QUANT_MODES):
            t = r.timings_s
            outside = sum(t.get(k, 0.0) for k in ("convert", "evaluate", "measure"))
            rows[r.spec.quantization].append({**t, "outside": outside, "status": r.status, "res": spec.resolution,
                                              "macs": r.macs, "reason": r.reason})
        print(f"spec {i + 1}/{args.specs}: {spec.hash} {spec.resolution}px {rows['float32'][-1]['macs'] / 1e6:.1f} MMAC", file=sys.stderr)

    print(f"\nCandidate pipeline outside training: {args.specs} specs from {args.space}, digits validation split "
          f"({len(dataset.y_val)} samples), seconds per candidate")
    print(f"{'mode':<13} {'convert':>8} {'evaluate':>9} {'measure':>8} {'total med':>10} {'total max':>10} {'failed':>7}")
    for mode, items in rows.items():
        ok = [x for x in items if x["status"] == "ok"]
        med = lambda key: statistics.median(x[key] for x in ok) if ok else float("nan")  # noqa: E731
        worst = max((x["outside"] for x in ok), default=float("nan"))
        print(f"{mode:<13} {med('convert'):>8.2f} {med('evaluate'):>9.2f} {med('measure'):>8.2f} "
              f"{med('outside'):>10.2f} {worst:>10.2f} {len(items) - len(ok):>7}")
        for x in items:
            if x["status"] != "ok":
                print(f"    failed: {x['reason'][:100]}")
    print(f"(data preparation per resolution, shared by the modes: median "
          f"{statistics.median(x['prepare'] for x in rows['float32']):.2f} s; wall time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
