"""Fused LSTM layers (UNIDIRECTIONAL_SEQUENCE_LSTM): a kernel model for what Keras LSTMs convert to.

    python benchmarks/fused_lstm.py --cache runs/latency-cache            # build, count, fit, score (~10 min on 2 cores)
    python benchmarks/fused_lstm.py --cache runs/latency-cache --write    # ... and extend the artifacts

The TFLite converter turns a Keras LSTM (from_keras_model) into one UNIDIRECTIONAL_SEQUENCE_LSTM
kernel; nothing in the calibration held one, and a stand-in priced it 95-99.7% under. This builds
single-layer LSTM models over a spread of steps, inputs and units (float32 and int8, a random half
returning sequences), counts them on both instruction-count devices, and extends each mode's fit with
coefficients for the kernel alone (`extend_kernels`: the fit's own coefficients stay as they are,
so every other model is priced as before). Scored on the generated models' held-out split and on a
second draw of shapes (another seed) that no fit sees. Writing changes the host artifacts' digest:
refit the board catalog after it (`nas calibrate --boards`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from any_tflite import cached  # noqa: E402

from nas.calibration import extend_kernels, write_artifact  # noqa: E402
from nas.latency import load_device  # noqa: E402

DEVICES = {"host-tflm-icount": "tflm", "host-litert-icount": "litert"}
MODES = ("float32", "int8")
FAMILY = "unidirectional_sequence_lstm"


def build(seed: int, count: int) -> list[tuple]:
    """`count` LSTM shapes (steps, inputs, units, whether it returns sequences), each converted in
    float32 and int8 with float input and output: [(shape, mode, tflite bytes)]."""
    import tensorflow as tf

    from nas.backend import keras

    L = keras.layers
    keras.utils.set_random_seed(seed)  # the layers' initial weights too
    rng = np.random.default_rng(seed)
    shapes = set()
    while len(shapes) < count:
        shapes.add((int(rng.choice([4, 8, 10, 16, 20, 25, 32, 49, 64])), int(rng.choice([1, 3, 6, 8, 10, 13, 16, 32, 40])),
                    int(rng.choice([8, 12, 16, 24, 32, 48, 64]))))
    out = []
    for steps, width, units in sorted(shapes):
        sequences = bool(rng.integers(0, 2))
        inputs = keras.Input((steps, width), batch_size=1)
        x = L.LSTM(units, return_sequences=sequences)(inputs)
        model = keras.Model(inputs, L.Dense(4)(L.Flatten()(x) if sequences else x))
        for mode in MODES:
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            if mode == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                xs = rng.normal(size=(16, 1, steps, width)).astype(np.float32)
                converter.representative_dataset = lambda xs=xs: ([x] for x in xs)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            out.append(((steps, width, units, sequences), mode, converter.convert()))
    return out


def count(models: list[tuple]) -> dict:
    from nas.measure import count_instructions

    out = {}
    for runtime in DEVICES.values():
        for m, c in zip(models, count_instructions([m[2] for m in models], runtime)):
            out[(runtime, m[0], m[1])] = c.instructions
    return out


def _name(shape, mode) -> str:
    return f"lstm-{'-'.join(map(str, shape))}-{mode}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--seed", type=int, default=2026, help="the fitted draw of shapes")
    parser.add_argument("--check-seed", type=int, default=7, help="a second draw, scored only")
    parser.add_argument("--write", action="store_true", help="extend the host artifacts with the fitted coefficients")
    args = parser.parse_args()

    fitted_on = cached(args.cache, f"fused-lstm-{args.seed}-models.pkl", lambda: build(args.seed, 22))
    checked = cached(args.cache, f"fused-lstm-{args.check_seed}-models.pkl", lambda: build(args.check_seed, 8))
    counts = cached(args.cache, f"fused-lstm-{args.seed}-counts.pkl", lambda: count(fitted_on))
    check_counts = cached(args.cache, f"fused-lstm-{args.check_seed}-counts.pkl", lambda: count(checked))
    print("| device | mode | fitted on | held-out split: within ±10% (max) | second draw: within ±10% (max) | "
          "before (second draw, stand-in): median error |")
    print("|---|---|---|---|---|---|")
    for name, runtime in DEVICES.items():
        device = load_device(name)
        artifact = device.artifact
        priced_by = artifact.get("feature_set", "kernel")
        for mode in MODES:
            if mode not in artifact["modes"]:
                continue
            usable = [m for m in fitted_on if m[1] == mode and counts.get((runtime, m[0], mode))]
            extended = extend_kernels(artifact["modes"][mode], [m[2] for m in usable],
                                      [counts[(runtime, m[0], mode)] for m in usable], [_name(m[0], mode) for m in usable],
                                      (FAMILY,), args.seed, priced_by)
            second = [m for m in checked if m[1] == mode and check_counts.get((runtime, m[0], mode))]
            # before: the fit without the kernel's coefficients (a stand-in prices it), whether or not they were written
            without = {k: v for k, v in extended["coef"].items() if not k.startswith(FAMILY + ":")}
            artifact["modes"][mode] = {**extended, "coef": without}
            before = [device.predict(m[2]).value / check_counts[(runtime, m[0], mode)] - 1 for m in second]
            artifact["modes"][mode] = extended  # the artifact as loaded: predictions below use the extension
            after = np.array([device.predict(m[2]).value / check_counts[(runtime, m[0], mode)] - 1 for m in second])
            held = extended["extensions"][-1]["held_out"] or {}
            print(f"| {name} | {mode} | {extended['extensions'][-1]['fitted_on']} | {held.get('within_10pct', float('nan')):.0%} "
                  f"({held.get('max_error_pct', float('nan')):.1f}%) of {held.get('n', 0)} | "
                  f"{np.mean(np.abs(after) <= 0.10):.0%} ({100 * np.abs(after).max():.1f}%) of {len(after)} | "
                  f"{100 * np.median(before):+.1f}% |")
        if args.write:
            artifact.setdefault("provenance", {}).setdefault("extended", {})[FAMILY] = (
                f"python benchmarks/fused_lstm.py --cache runs/latency-cache --write (seed {args.seed}; "
                f"scored on seed {args.check_seed})")
            write_artifact(Path(__file__).resolve().parents[1] / "latency_models" / f"{name}.json", artifact)
    if args.write:
        print("\nwritten: refit the board catalog on them with `nas calibrate --boards`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
