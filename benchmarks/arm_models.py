"""Cortex-M under emulation: the Arm counts' repeatability and cost, the kernel models fitted on
them per core and kernel set (held-out accuracy), and reference-kernel / CMSIS-NN ratios on the
MLPerf Tiny reference models. With --write it also writes latency_models/<device>.json (the same
fitting code as `nas calibrate --device cortex-m*-qemu-*`, over one shared sample set).

    python benchmarks/arm_models.py --samples 240 --op-samples 2 --cache runs/arm-cache --write
    python benchmarks/arm_models.py --devices cortex-m4-qemu-cmsisnn --cache runs/arm-cache

--cache keeps the converted samples and each device's counts, so a rerun or another device
reuses them (building the samples takes most of the time; counting one takes 0.05 to 10 s).
Each device's counts are cached as soon as they are taken.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from nas.calibration import (HELD_OUT_FRACTION, host_artifact, make_op_samples, make_samples, measure_samples,  # noqa: E402
                             write_artifact)
from nas.latency import artifact_path, load_device  # noqa: E402

ARM_DEVICES = tuple(f"{core}-qemu-{kernels}" for core in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m0p")
                    for kernels in ("cmsisnn", "reference"))
_TFLM_MODES = ("float32", "int8", "int16x8")


class _Unpickler(pickle.Unpickler):
    """Caches written before calibration left nas.latency name its Sample there."""

    def find_class(self, module, name):
        return super().find_class(module.replace("nas.latency._sampling", "nas.calibration._sampling"), name)


def _load(cache: Path | None, name: str):
    if cache and (cache / name).is_file():
        with open(cache / name, "rb") as fh:
            return _Unpickler(fh).load()
    return None


def _save(cache: Path | None, name: str, value) -> None:
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"{name}.part"
        with open(tmp, "wb") as fh:
            pickle.dump(value, fh)
        tmp.rename(cache / name)


def samples_for(args) -> list:
    samples = _load(args.cache, "samples.pkl")
    if samples is None:
        start = time.time()
        samples = make_samples(args.samples, _TFLM_MODES, args.seed)
        if args.op_samples:
            samples += make_op_samples(args.op_samples, _TFLM_MODES, args.seed + 11)
        print(f"built {len(samples)} samples in {time.time() - start:.0f} s", file=sys.stderr, flush=True)
        _save(args.cache, "samples.pkl", samples)
    return samples


def counted(name: str, samples: list, cache: Path | None, modes=None) -> tuple[list, float]:
    """The samples with this device's counts (cached per device, and per mode set where `modes` narrows it)."""
    import copy

    device = load_device(name)
    stem = f"counts-{name}" + (f"-{'-'.join(sorted(modes))}" if modes else "")
    cached = _load(cache, f"{stem}.pkl")
    mine = [copy.copy(s) for s in samples if device.runs(s.mode) and (not modes or s.mode in modes)]
    if cached and len(cached["measured"]) == len(mine):
        for s, measured, arena, reason in zip(mine, cached["measured"], cached["arena"], cached["reason"]):
            s.measured, s.arena_bytes, s.arena_tail, s.reason = measured, arena, None, reason
        return mine, cached["seconds"]
    start = time.time()
    measure_samples(mine, device)
    seconds = time.time() - start
    _save(cache, f"{stem}.pkl", {"measured": [s.measured for s in mine], "arena": [s.arena_bytes for s in mine],
                                        "reason": [s.reason for s in mine], "seconds": seconds})
    return mine, seconds


def _row(label: str, v: dict) -> str:
    if "within_10pct" not in v:
        return f"| {label} | {v.get('n', 0)} | {v.get('note', '')} | | | |"
    return (f"| {label} | {v['n']} | {v.get('regressor', 'per mode')} | {v['within_10pct']:.0%} | {v['spearman']:.4f} | "
            f"{v['mape_pct']:.1f}% |")


def repeatability(args) -> None:
    """Two runs of each MLPerf Tiny reference model (int8) on each built device: equal counts, and
    the emulation time per run and per MB of model."""
    from nas.candidate import convert
    from nas.calibration import REFERENCE_MODELS, build_reference
    from nas.measure import arm_count

    print("\n## Arm counts: repeatability, emulation time, reference kernels against CMSIS-NN (MLPerf Tiny models, int8)\n")
    print("| model | size | core | CMSIS-NN instructions | reference instructions | reference / CMSIS-NN | repeats exactly | "
          "emulation s (CMSIS-NN, reference) |")
    print("|---|---|---|---|---|---|---|---|")
    from nas.calibration import settle

    rng = np.random.default_rng(0)
    for ref in REFERENCE_MODELS:
        model = build_reference(ref)
        x = rng.normal(0, 1, (8, *model.input_shape[1:])).astype(np.float32)
        settle(model, x, rng, steps=2)  # untrained logits can be so flat that softmax's parameter check fails
        tflite = convert(model, "int8", x, io_type="int8", batch_size=1)
        for core in args.ratio_cores:
            runs = {k: [arm_count(tflite, core, k) for _ in range(2)] for k in ("cmsisnn", "reference")}
            same = all(a.instructions == b.instructions and a.operators == b.operators for a, b in runs.values())
            c, r = runs["cmsisnn"][0], runs["reference"][0]
            print(f"| {ref} | {len(tflite) / 1024:.0f} KB | {core} | {c.instructions:,} | {r.instructions:,} | "
                  f"{r.instructions / c.instructions:.1f}x | {'yes' if same else 'NO'} | {c.emulation_s:.2f}, {r.emulation_s:.2f} |",
                  flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=240)
    parser.add_argument("--op-samples", type=int, default=2)
    parser.add_argument("--devices", nargs="+", choices=ARM_DEVICES, default=list(ARM_DEVICES))
    parser.add_argument("--ratio-cores", nargs="*", default=["cortex-m4"], help="cores for the repeatability/ratio table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--write", action="store_true", help="write the artifacts into latency_models/")
    parser.add_argument("--modes", nargs="+", choices=_TFLM_MODES,
                        help="count only these modes (the Cortex-M0+ has no FPU: its float32 samples take hours)")
    args = parser.parse_args()

    samples = samples_for(args)
    if args.ratio_cores:
        repeatability(args)
    print(f"\n## Kernel models of the Arm counts ({len(samples)} sampled models: "
          f"{sum(s.source == 'generic' for s in samples)} plain, {sum(s.source == 'operators' for s in samples)} "
          f"around single operators; held-out {HELD_OUT_FRACTION:.0%})\n")
    print("| device / mode | held-out n | regressor | within ±10% | Spearman | mean abs error |")
    print("|---|---|---|---|---|---|")
    for name in args.devices:
        device = load_device(name)
        mine, seconds = counted(name, samples, args.cache, args.modes)
        artifact = host_artifact(device, mine, args.seed, {"seconds": round(seconds, 1),
                                                            "command": "python benchmarks/arm_models.py " + " ".join(sys.argv[1:])})
        for mode, v in artifact["validation"].items():
            if mode != "leave_one_out":
                print(_row(f"{name} / {mode}", v), flush=True)
        if args.write:
            write_artifact(artifact_path(device.latency_model), artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main())
