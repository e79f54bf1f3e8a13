"""`nas calibrate`: sample models, measure them on the device's ruler, fit, validate, write.

Samples come from every search space and from a family of plain models outside them (strided
and valid-padded convolutions, non-square kernels, pooling, flatten, MLPs), in every mode the
device runs. Models are untrained: the kernels do the same work whatever the weights, but
untrained statistics make degenerate quantization ranges, so `settle()` first gives each model
realistic batch-norm statistics and spread-out biases. Each sample is measured (instruction count
or robust wall-clock), a regressor per mode is chosen by cross-validation on the training split,
and everything is scored on a held-out split the fit and the choice never saw.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import CandidateFailed, ConfigError
from .arena import arena_features, fit_arena_model, liveness_bytes, predict_arena, tflm_buffers
from .kernels import feature_set, features, kernels_from_tflite

__all__ = ["Sample", "make_samples", "settle", "calibrate_host", "host_artifact", "calibrate_mcu", "HELD_OUT_FRACTION"]

HELD_OUT_FRACTION = 0.25


@dataclass
class Sample:
    name: str
    source: str  # search space name or "generic"
    mode: str
    tflite: bytes
    rows: dict | None = None  # kernel features, computed by host_artifact for the device it fits
    measured: float | None = None
    arena_bytes: int | None = None
    reason: str = ""
    arena_tail: int | None = None  # the part of arena_bytes TFLite Micro reports as its tail


def settle(model, x: np.ndarray, rng: np.random.Generator, steps: int = 12):
    """Realistic statistics for an untrained model: batch-norm moving statistics from data,
    varied scales and offsets, classifier biases spread over a few units (so quantized logits
    have a usable range and no two bias tensors are identical)."""
    from ._tf import keras

    for _ in range(steps):
        model(x, training=True)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.normal(0.0, 0.3, beta.shape).astype(np.float32), mean, var])
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.permutation(np.linspace(-3, 3, bias.shape[0])).astype(np.float32)])
    return model


def _generic_model(rng: np.random.Generator):
    """A plain model outside the search spaces: conv/pool stacks or an MLP."""
    from ._tf import keras

    L = keras.layers
    classes = int(rng.choice([2, 7, 10, 12]))
    if rng.random() < 0.25:  # MLP on a flat vector
        inputs = keras.Input((int(rng.choice([64, 128, 256, 640])),))
        x = inputs
        for _ in range(int(rng.integers(1, 5))):
            x = L.ReLU()(L.BatchNormalization()(L.Dense(int(rng.choice([8, 32, 64, 128, 256])))(x)))
        x = L.Dense(classes, activation="softmax")(x)
        return keras.Model(inputs, x), inputs.shape[1:]
    size = int(rng.choice([16, 24, 32, 48, 64]))
    shape = (size, size, int(rng.choice([1, 3]))) if rng.random() < 0.8 else (49, 10, 1)
    inputs = keras.Input(shape)
    x = inputs
    for _ in range(int(rng.integers(1, 5))):
        if x.shape[1] < 4 or x.shape[2] < 4:
            break
        kernel = tuple(int(k) for k in rng.choice([1, 3, 5], 2)) if rng.random() < 0.3 else int(rng.choice([1, 3, 5]))
        stride = int(rng.choice([1, 2]))
        padding = str(rng.choice(["same", "valid"]))
        kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
        if kh > x.shape[1] or kw > x.shape[2]:
            padding = "same"
        if rng.random() < 0.3:
            x = L.DepthwiseConv2D(kernel, stride, "same")(x)
        else:
            x = L.Conv2D(int(rng.choice([8, 16, 24, 32, 64])), kernel, stride, padding)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        if rng.random() < 0.4 and x.shape[1] >= 4 and x.shape[2] >= 4:
            x = (L.MaxPooling2D if rng.random() < 0.5 else L.AveragePooling2D)(2)(x)
    if rng.random() < 0.5:
        x = L.Flatten()(x)
        if rng.random() < 0.5:
            x = L.ReLU()(L.Dense(int(rng.choice([16, 64, 128])))(x))
    else:
        x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, x), inputs.shape[1:]


def make_samples(count: int, modes: tuple[str, ...], seed: int = 0, generic_fraction: float = 0.5,
                 progress: Callable[[int, int], None] | None = None) -> list[Sample]:
    """`count` converted models: specs drawn from every search space, and plain models, cycling
    through `modes`. A model that fails to convert is kept with its reason and not measured."""
    from ._tf import keras
    from .build import build_model
    from .convert import convert
    from .space import load_space, space_names

    rng = np.random.default_rng(seed)
    spaces = [load_space(name) for name in space_names()]
    samples = []
    for i in range(count):
        mode = modes[i % len(modes)]
        keras.backend.clear_session()
        if rng.random() < generic_fraction:
            model, shape = _generic_model(rng)
            name, source = f"generic-{i}", "generic"
        else:
            space = spaces[int(rng.integers(len(spaces)))]
            spec = space.sample(rng).replace(quantization=mode)
            channels, classes = int(rng.choice([1, 3])), int(rng.choice([2, 7, 10]))
            model = build_model(spec, channels, classes, dropout=0.0)
            shape = (spec.resolution, spec.resolution, channels)
            name, source = f"{space.name}-{spec.hash}-c{channels}k{classes}", space.name
        x = rng.uniform(0, 1, (16, *tuple(int(d) for d in shape))).astype(np.float32)
        settle(model, x, rng)
        sample = Sample(name, source, mode, b"")
        try:
            sample.tflite = convert(model, mode, x)
        except CandidateFailed as exc:
            sample.reason = exc.reason
        samples.append(sample)
        if progress:
            progress(i + 1, count)
    return samples


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed + 1).permutation(n)
    held = max(1, int(round(n * HELD_OUT_FRACTION))) if n >= 4 else 0
    return np.sort(order[held:]), np.sort(order[:held])


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for dist in ("tensorflow", "ai-edge-litert", "tflite-micro", "numpy", "scipy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(samples: int, seed: int, extra: dict | None = None) -> dict:
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "samples": samples,
            "seed": seed, "cpu": _cpu(), "platform": platform.platform(), "python": platform.python_version(),
            "versions": _versions(), **(extra or {})}


def fit_and_validate(samples: list[Sample], modes: tuple[str, ...], seed: int) -> dict:
    """Per mode: choose and fit on the training split, score on the held-out split."""
    from .latency import fit_mode, fit_regressor, score

    result: dict = {"modes": {}, "validation": {}, "cross_validation": {}}
    all_pred, all_true = [], []
    floor_pred, outside = [], []
    for mode in modes:
        usable = [s for s in samples if s.mode == mode and s.measured]
        if len(usable) < 6:
            result["validation"][mode] = {"n": len(usable), "note": "too few measured samples to fit"}
            continue
        train, held = _split(len(usable), seed)
        rows = [usable[i].rows for i in train]
        y = np.array([usable[i].measured for i in train])
        model, cv = fit_mode(rows, y, seed=seed)
        floor = fit_regressor("macs-linear", rows, y)
        result["modes"][mode] = model.to_dict()
        result["cross_validation"][mode] = cv
        if len(held):
            pred = np.array([model.predict(usable[i].rows) for i in held])
            true = np.array([usable[i].measured for i in held])
            fpred = np.array([floor.predict(usable[i].rows) for i in held])
            result["validation"][mode] = {"regressor": model.regressor, **score(pred, true),
                                          "macs_linear_floor": score(fpred, true)}
            outside.append(np.array([usable[i].source == "generic" for i in held]))
            all_pred.append(pred)
            all_true.append(true)
            floor_pred.append(fpred)
    if all_true:
        p, t, f = (np.concatenate(v) for v in (all_pred, all_true, floor_pred))
        result["validation"]["all"] = {**score(p, t), "macs_linear_floor": score(f, t)}
        generic = np.concatenate(outside)
        for key, mask in (("all_search_spaces", ~generic), ("all_outside_spaces", generic)):
            if mask.any():
                result["validation"][key] = score(p[mask], t[mask])
    return result


def fit_arena(samples: list[Sample], seed: int) -> dict | None:
    """TFLite Micro arena = fitted tail + the greedy-planned head (or, on tiny models, the larger
    scratch allocation needs), fitted per quantization mode on the training split and scored on
    the held-out one (`nas.arena`)."""
    from .latency import score

    modes: dict[str, dict] = {}
    for mode in sorted({s.mode for s in samples if s.arena_bytes}):
        usable = [s for s in samples if s.arena_bytes and s.mode == mode]
        if len(usable) < 6:
            continue
        rows = [_arena_row(s.tflite) for s in usable]
        measured = np.array([s.arena_bytes for s in usable], float)
        train, held = _split(len(usable), seed)
        fitted = fit_arena_model([rows[i] for i in train], [int(measured[i]) for i in train],
                                 [usable[i].arena_tail for i in train])
        predicted = np.array([predict_arena(r, fitted) for r in rows], float)
        modes[mode] = {**fitted, "n": len(usable)}
        if len(held):
            modes[mode]["validation"] = score(predicted[held], measured[held])
            modes[mode]["liveness_bound_validation"] = score(
                np.array([liveness_bytes(tflm_buffers(usable[i].tflite)) for i in held], float), measured[held])
    if not modes:
        return None
    return {"kind": "planned-head+linear-tail", "modes": modes,
            "validation": modes.get("int8", next(iter(modes.values()))).get("validation", {})}


@lru_cache(maxsize=4096)
def _arena_row(tflite: bytes) -> dict[str, float]:
    """arena_features, read once per model for the fit and the artifact's records alike."""
    return arena_features(tflite)


def sample_records(samples: list[Sample]) -> list[dict]:
    """What was measured, kept in the artifact so a fit can be redone and audited."""
    return [{"name": s.name, "source": s.source, "mode": s.mode, "measured": s.measured, "arena_bytes": s.arena_bytes,
             "arena_features": _arena_row(s.tflite) if s.tflite and s.arena_bytes else None,
             "reason": s.reason, "features": s.rows} for s in samples]


def write_artifact(path: Path, artifact: dict) -> Path:
    from ._io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(artifact, indent=1, sort_keys=False) + "\n")
    return Path(path)


def measure(samples: list[Sample], device) -> None:
    """Fill `measured` (and `arena_bytes` on TFLite Micro devices) for every converted sample."""
    from .runtime import tflm_arena

    todo = [s for s in samples if s.tflite]
    if device.measure == "icount":
        from .icount import count_instructions

        for sample, count in zip(todo, count_instructions([s.tflite for s in todo], device.runtime)):
            sample.measured = float(count.instructions) if count.instructions else None
            sample.reason = sample.reason or count.reason
    elif device.measure == "wallclock":
        from .timing import measure_wallclock

        for sample, ms in zip(todo, measure_wallclock([s.tflite for s in todo]).ms):
            sample.measured = ms
    else:
        raise ConfigError(f"device {device.name} is not measured on this host (measure: {device.measure!r})")
    if device.runtime == "tflm":
        for sample in todo:
            if sample.measured:
                arena = tflm_arena(sample.tflite)
                sample.arena_bytes = arena.arena_bytes if arena.compatible else None
                sample.arena_tail = arena.tail_bytes if arena.compatible else None


def calibrate_host(device, count: int, seed: int = 0, progress=None) -> dict:
    """Sample, measure, fit and validate the latency model of a host device."""
    start = time.time()
    samples = make_samples(count, device.quantization, seed, progress=progress)
    measure(samples, device)
    return host_artifact(device, samples, seed, {"seconds": round(time.time() - start, 1)})


def host_artifact(device, samples: list[Sample], seed: int, extra_provenance: dict | None = None) -> dict:
    """Fit and validate on measured `samples`; the artifact with its samples and provenance."""
    priced_by = feature_set(device.runtime, device.measure)
    for s in samples:  # the features this device's kernels are priced by
        if s.tflite:
            s.rows = features(kernels_from_tflite(s.tflite), priced_by)
    failures: dict[str, int] = {}
    for s in samples:
        if not s.measured:
            key = f"{s.mode}: {s.reason or 'not measured'}"[:160]
            failures[key] = failures.get(key, 0) + 1
    return {
        "device": device.name, "unit": device.unit, "runtime": device.runtime, "measure": device.measure,
        "kind": "kernel-sum", "feature_set": priced_by, **fit_and_validate(samples, device.quantization, seed),
        "arena": fit_arena(samples, seed) if device.runtime == "tflm" else None,
        "samples": sample_records(samples),
        "provenance": provenance(len(samples), seed, {
            "measured": sum(1 for s in samples if s.measured), "held_out_fraction": HELD_OUT_FRACTION,
            "sources": sorted({s.source for s in samples}), "not_measured": failures,
            "ruler": ("callgrind instructions inside the runtime's invoke, second of two invokes"
                      if device.measure == "icount" else "wall-clock ms, LiteRT 1 thread, robust protocol (nas.timing)"),
            **(extra_provenance or {}),
        }),
    }


def mcu_timings() -> list[dict]:
    """Published microcontroller timings (MLPerf Tiny), shipped as latency_models/mcu_timings.csv."""
    import csv

    from ._paths import catalog_dirs

    for folder in catalog_dirs("latency_models"):
        if (folder / "mcu_timings.csv").is_file():
            with open(folder / "mcu_timings.csv", newline="") as fh:
                return list(csv.DictReader(fh))
    raise ConfigError("latency_models/mcu_timings.csv is missing: the microcontroller devices are calibrated on it")


def calibrate_mcu(device, seed: int = 0) -> dict:
    """Scale the base device's instruction model to a board's published MLPerf Tiny timings.

    ms = k * predicted instructions; k is fitted in log space (a geometric mean of ratios) on the
    reference models, and the leave-one-out error says how well the shape transfers."""
    from ._tf import keras
    from .convert import convert
    from .devices import load_device
    from .icount import count_instructions
    from .reference_models import REFERENCE_MODELS, build_reference

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
        keras.backend.clear_session()
        model = build_reference(name)
        x = rng.uniform(0, 1, (16, *REFERENCE_MODELS[name][1])).astype(np.float32)
        settle(model, x, rng)
        tflite = convert(model, "int8", x)
        refs.append({"reference_model": name, "published_ms": float(row["latency_ms"]), "tflite": tflite,
                     "predicted_instructions": base.predict(tflite)["instructions"]})
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
            "timings": f"shared/reference/mcu_timings.csv, board {device.board}, runtime {device.board_runtime}",
            "shape": f"{base.name} latency model (host TFLite Micro reference-kernel instruction counts)"}),
    }
