"""Microcontroller profiles: the host TFLite Micro instruction model's shape, scaled to a board's
published MLPerf Tiny timings (`latency_models/mcu_timings.csv`)."""

from __future__ import annotations

import numpy as np

from ..catalog import catalog_dirs
from ..errors import ConfigError
from ._fitting import provenance
from ._sampling import settle

__all__ = ["mcu_timings", "calibrate_mcu"]


def mcu_timings() -> list[dict]:
    """Published microcontroller timings (MLPerf Tiny), shipped as latency_models/mcu_timings.csv."""
    import csv

    for folder in catalog_dirs("latency_models"):
        if (folder / "mcu_timings.csv").is_file():
            with open(folder / "mcu_timings.csv", newline="") as fh:
                return list(csv.DictReader(fh))
    raise ConfigError("latency_models/mcu_timings.csv is missing: the microcontroller devices are calibrated on it")


def calibrate_mcu(device, seed: int = 0) -> dict:
    """Scale the base device's instruction model to a board's published MLPerf Tiny timings.

    ms = k * predicted instructions; k is fitted in log space (a geometric mean of ratios) on the
    reference models, and the leave-one-out error says how well the shape transfers."""
    from ..candidate import convert
    from ..measure import count_instructions
    from ._devices import load_device
    from ._reference_models import REFERENCE_MODELS, build_reference

    base = load_device(device.base_device)
    rows = [r for r in mcu_timings() if r["board"] == device.board and r["runtime"] == device.board_runtime]
    if not rows:
        raise ConfigError(f"{device.name}: no published timings for board {device.board!r} and runtime {device.board_runtime!r}")
    rng = np.random.default_rng(seed)
    refs = []
    for row in rows:
        name = row["reference_model"]
        if name not in REFERENCE_MODELS:
            raise ConfigError(f"{device.name}: no builder for reference model {name!r}")
        model = build_reference(name)
        x = rng.uniform(0, 1, (16, *REFERENCE_MODELS[name][1])).astype(np.float32)
        settle(model, x, rng)
        tflite = convert(model, "int8", x)
        refs.append({"reference_model": name, "published_ms": float(row["latency_ms"]), "tflite": tflite,
                     "predicted_instructions": base.predict(tflite).instructions})
    counts = count_instructions([r["tflite"] for r in refs], base.runtime)
    for ref, count in zip(refs, counts):
        ref["measured_instructions"] = count.instructions

    def fit(items) -> float:
        return float(np.exp(np.mean([np.log(r["published_ms"] / r["predicted_instructions"]) for r in items])))

    k = fit(refs)
    for i, ref in enumerate(refs):
        ref["fitted_ms"] = k * ref["predicted_instructions"]
        others = [r for j, r in enumerate(refs) if j != i]
        ref["loo_ms"] = fit(others) * ref["predicted_instructions"] if others else None
        ref["loo_error_pct"] = 100 * (ref["loo_ms"] / ref["published_ms"] - 1) if others else None
        del ref["tflite"]
    loo = [abs(r["loo_error_pct"]) for r in refs if r["loo_error_pct"] is not None]
    return {
        "device": device.name, "unit": "ms", "runtime": device.runtime, "kind": "scaled-instructions",
        "base_device": base.name, "ms_per_instruction": k,
        "cycles_per_instruction": k * 1e-3 * device.clock_mhz * 1e6 if device.clock_mhz else None,
        "references": refs,
        "validation": {"leave_one_out": {"n": len(loo), "mean_abs_error_pct": float(np.mean(loo)) if loo else None,
                                         "max_abs_error_pct": float(np.max(loo)) if loo else None,
                                         "note": "" if loo else "one published timing: no leave-one-out possible"}},
        "provenance": provenance(len(refs), seed, {
            "timings": f"latency_models/mcu_timings.csv, board {device.board}, runtime {device.board_runtime}",
            "shape": f"{base.name} latency model (host TFLite Micro reference-kernel instruction counts)"}),
    }
