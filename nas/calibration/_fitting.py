"""`nas calibrate` for host devices: measure the samples on the device's ruler, choose and fit a
regressor per mode by cross-validation on a training split, score everything on a held-out split
that the fit and the choice never saw, and write the artifact with its provenance.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import atomic_write_text
from ..latency import (arena_features, family_features, feature_set, features, host_cpu, kernels_from_tflite, liveness_bytes,
                       predict_arena, stand_in_key, tflm_buffers)
from ._arena import extend_tail, fit_arena_model
from ._regress import fit_mode, fit_regressor, score
from ._sampling import Sample, make_samples

__all__ = ["HELD_OUT_FRACTION", "calibrate_host", "host_artifact", "measure_samples", "write_artifact", "provenance",
           "held_out_split", "stand_in_spread", "extend_arena", "extend_kernels", "sample_records"]

HELD_OUT_FRACTION = 0.25


def held_out_split(names: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and held-out samples. A sample is held out by a hash of its name
    (and the seed), not by its position: adding samples to a calibration never moves the others
    between the splits, so a refit's held-out scores compare with the last one's. (A random
    permutation did move them: adding 120 operator models moved 55 of the 310 plain models.)"""
    if len(names) < 4:
        return np.arange(len(names)), np.arange(0)
    buckets = round(1 / HELD_OUT_FRACTION)
    held = np.array([zlib.crc32(f"{seed}:{name}".encode()) % buckets == 0 for name in names])
    return np.flatnonzero(~held), np.flatnonzero(held)


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for dist in ("tensorflow", "ai-edge-litert", "tflite-micro", "numpy", "scipy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions


def provenance(samples: int, seed: int, extra: dict | None = None) -> dict:
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "samples": samples,
            "seed": seed, "cpu": host_cpu(), "platform": platform.platform(), "python": platform.python_version(),
            "versions": _versions(), **(extra or {})}


def fit_and_validate(samples: list[Sample], modes: tuple[str, ...], seed: int) -> dict:
    """Per mode: choose and fit on the training split, score on the held-out split."""
    result: dict = {"modes": {}, "validation": {}, "cross_validation": {}}
    all_pred, all_true = [], []
    floor_pred, outside = [], []
    for mode in modes:
        usable = [s for s in samples if s.mode == mode and s.measured]
        if len(usable) < 6:
            result["validation"][mode] = {"n": len(usable), "note": "too few measured samples to fit"}
            continue
        train, held = held_out_split([s.name for s in usable], seed)
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
            outside.append(np.array([usable[i].source for i in held]))
            all_pred.append(pred)
            all_true.append(true)
            floor_pred.append(fpred)
    if all_true:
        p, t, f = (np.concatenate(v) for v in (all_pred, all_true, floor_pred))
        result["validation"]["all"] = {**score(p, t), "macs_linear_floor": score(f, t)}
        source = np.concatenate(outside)
        for key, mask in (("all_search_spaces", ~np.isin(source, ["generic", "operators"])),
                          ("all_outside_spaces", source == "generic"), ("all_operators", source == "operators")):
            if mask.any():
                result["validation"][key] = score(p[mask], t[mask])
    return result


def stand_in_spread(samples: list[Sample], modes: dict[str, dict]) -> dict | None:
    """How far a stand-in's price strays from an operator's own, measured on the calibration (what
    widens the error stated for an operator priced by a stand-in, `Device.predict`).

    Each calibrated kernel family in the generated operator models is priced, as if it were unknown,
    by the stand-in `stand_in` would pick among the others, and set against its own fitted cost in
    the same models: per mode and family, the median ratio own / stand-in over its models, and its
    deviation |ratio - 1| (1 = the stand-in is off by 2x). Only pairs whose stand-in is priced by
    features the family's models carry (a stand-in reading MACs is not priced from a family without
    them), and kernel features only (XNNPACK's tile features have no stand-ins)."""
    deviations: dict[str, list[float]] = {}
    for mode, fitted in modes.items():
        coef = fitted.get("coef", {})
        keys = frozenset(name.split(":")[0] for name in coef)
        if fitted.get("regressor") == "macs-linear" or not keys:
            continue
        ratios: dict[str, list[float]] = {}
        for s in samples:
            if s.source != "operators" or s.mode != mode or not s.measured or not s.rows:
                continue
            by_key: dict[str, dict[str, float]] = {}
            for name, value in s.rows.items():
                key, _, feature = name.partition(":")
                if value and key in keys and key != "graph" and not key.startswith("xnn-"):
                    by_key.setdefault(key, {})[feature] = value
            for key, values in by_key.items():
                other = stand_in_key(key, keys - {key})
                if other is None or not set(family_features(other.split("/")[0])) <= set(family_features(key.split("/")[0])):
                    continue
                own = sum(coef.get(f"{key}:{f}", 0.0) * v for f, v in values.items())
                estimate = sum(coef.get(f"{other}:{f}", 0.0) * v for f, v in values.items())
                if own > 0 and estimate > 0:
                    ratios.setdefault(key, []).append(own / estimate)
        if ratios:
            deviations[mode] = [abs(float(np.median(r)) - 1.0) for r in ratios.values()]
    if not deviations:
        return None

    def summary(d) -> dict:
        d = np.array(d)
        return {"pairs": len(d), "median": float(np.median(d)), "mean": float(d.mean()),
                "p90": float(np.quantile(d, 0.9)), "max": float(d.max())}

    return {**summary([v for d in deviations.values() for v in d]),
            "modes": {mode: summary(d) for mode, d in deviations.items()},
            "how": "per mode and calibrated family of the generated operator models: |own / stand-in - 1|, "
                   "the family's fitted cost against its stand-in's price of the same features (median over its models)"}


def fit_arena(samples: list[Sample], seed: int) -> dict | None:
    """TFLite Micro arena = fitted tail + the greedy-planned head (or, on tiny models, the larger
    scratch allocation needs), fitted per quantization mode on the training split and scored on
    the held-out one (`_arena`)."""
    modes: dict[str, dict] = {}
    for mode in sorted({s.mode for s in samples if s.arena_bytes}):
        usable = [s for s in samples if s.arena_bytes and s.mode == mode]
        if len(usable) < 6:
            continue
        rows = [_arena_row(s.tflite) for s in usable]
        measured = np.array([s.arena_bytes for s in usable], float)
        train, held = held_out_split([s.name for s in usable], seed)
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


def extend_arena(arena: dict, samples: list[Sample], seed: int) -> dict:
    """An arena fit (`fit_arena`) extended to what it never saw: per mode, a tail coefficient for
    every term of `samples` (arena-measured models, with the tail the interpreter reported) that
    it lacks, fitted on their training split (`extend_tail`), then scored on their held-out split
    (`extension_validation`, next to the fit's own terms alone); the fit's own terms (kept as
    `base_tail`), init lines and validation stay as they were."""
    out = {**arena, "modes": dict(arena["modes"])}
    for mode, fitted in arena["modes"].items():
        usable = [s for s in samples if s.mode == mode and s.arena_bytes and s.arena_tail is not None and s.tflite]
        if len(usable) < 6:
            continue
        rows = [_arena_row(s.tflite) for s in usable]
        train, held = held_out_split([s.name for s in usable], seed)
        # an extension is always made from the fit's own terms (`base_tail`), so a rerun refits it
        base = {**fitted, "tail": fitted.get("base_tail", fitted["tail"])}
        base.pop("base_tail", None)
        extended = extend_tail(base, [rows[i] for i in train], [usable[i].arena_tail for i in train])
        extended["base_tail"] = base["tail"]
        extended["extended_on"] = len(train)
        if len(held):
            before = np.array([predict_arena(rows[i], base) for i in held], float)
            after = np.array([predict_arena(rows[i], extended) for i in held], float)
            measured = np.array([usable[i].arena_bytes for i in held], float)
            extended["extension_validation"] = {**score(after, measured), "before": score(before, measured)}
        out["modes"][mode] = extended
    return out


def extend_kernels(fitted: dict, tflites: list[bytes], counts: list[float], names: list[str], families: tuple[str, ...],
                   seed: int, priced_by: str = "kernel") -> dict:
    """A mode's kernel-sum fit (`fitted`: its regressor and coefficients) extended with coefficients
    for kernel `families` it never saw, fitted by non-negative least squares on generated models
    around them (`tflites`, their counted instructions `counts`): on the training split of `names`,
    on what the fit's own coefficients leave of each count. Its own coefficients stay as they are, so
    every model it priced before is priced the same; coefficients it had for `families` (an earlier
    extension) are fitted again. `extensions` records the new terms and their held-out score."""
    from ..latency import KernelCostModel
    from ._regress import nnls

    coef = {k: v for k, v in fitted["coef"].items() if k.split(":")[0] not in families}
    rows = [features(kernels_from_tflite(t), priced_by) for t in tflites]
    new = sorted({k for r in rows for k, v in r.items() if v and k.split(":")[0] in families})
    if not new:
        raise ConfigError(f"none of the models has a kernel of {', '.join(families)}")
    measured = np.asarray(counts, float)
    model = KernelCostModel(fitted["regressor"], coef)
    own = np.array([model.predict(r) for r in rows])  # what the fit's own coefficients price
    x = np.array([[r.get(k, 0.0) for k in new] for r in rows])
    train, held = held_out_split(names, seed)
    scale = measured[train, None]  # relative errors: a small model counts as much as a large one
    w = nnls(x[train] / scale, (measured[train] - own[train]) / scale[:, 0])
    predicted = own + x @ w
    record = {"families": list(families), "terms": new, "fitted_on": int(len(train)),
              "held_out": score(predicted[held], measured[held]) if len(held) else None}
    kept = [e for e in fitted.get("extensions", []) if e.get("families") != list(families)]
    return {**fitted, "coef": {**coef, **{k: float(v) for k, v in zip(new, w)}}, "extensions": [*kept, record]}


@lru_cache(maxsize=4096)
def _arena_row(tflite: bytes) -> dict[str, float]:
    """arena_features, read once per model for the fit and the artifact's records alike."""
    return arena_features(tflite)


def sample_records(samples: list[Sample]) -> list[dict]:
    """What was measured, kept in the artifact so a fit can be redone and audited."""
    return [{"name": s.name, "source": s.source, "mode": s.mode, "measured": s.measured, "arena_bytes": s.arena_bytes,
             "arena_tail": s.arena_tail, "arena_features": _arena_row(s.tflite) if s.tflite and s.arena_bytes else None,
             "reason": s.reason, "features": s.rows} for s in samples]


def write_artifact(path: Path, artifact: dict) -> Path:
    """Write `artifact` to `path`. Replacing one whose fit was extended (`extend_kernels`, recorded in
    its provenance's `extended`) with one that was not warns, naming the commands that extend it
    again: a refit from samples holds none of the extension's models, so it drops their coefficients."""
    import warnings

    path = Path(path)
    try:
        old = json.loads(path.read_text()).get("provenance", {}).get("extended", {}) if path.is_file() else {}
    except (OSError, ValueError):
        old = {}
    lost = {k: v for k, v in old.items() if k not in artifact.get("provenance", {}).get("extended", {})}
    if lost:
        warnings.warn(f"{path.name}: the fit it replaces was extended ({', '.join(lost)}) and this one is not; "
                      f"extend it again: {'; '.join(lost.values())}", stacklevel=2)
    atomic_write_text(path, json.dumps(artifact, indent=1, sort_keys=False) + "\n")
    return path


def measure_samples(samples: list[Sample], device) -> None:
    """Fill `measured` (and `arena_bytes` on TFLite Micro devices) for every converted sample."""
    from ..measure import tflm_arena

    todo = [s for s in samples if s.tflite]
    if device.measure == "icount":
        from ..measure import count_instructions

        for sample, count in zip(todo, count_instructions([s.tflite for s in todo], device.runtime)):
            sample.measured = float(count.instructions) if count.instructions else None
            sample.reason = sample.reason or count.reason
    elif device.measure == "qemu":
        _count_on_arm(todo, device)
        return
    elif device.measure == "wallclock":
        from ..measure import measure_wallclock

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


def _count_on_arm(todo: list[Sample], device) -> None:
    """Instructions (the whole warm invoke) and arena of each sample on the device's Arm build,
    one emulator a core at a time. The arena is the core's own (4-byte pointers): no host tail."""
    from concurrent.futures import ThreadPoolExecutor

    from ..firmware import build_plugin, build_runner
    from ..measure import arm_count

    build_runner(device.arm_core, device.kernels)  # once, before the threads ask for it
    build_plugin()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = list(pool.map(lambda s: arm_count(s.tflite, device.arm_core, device.kernels), todo))
    for sample, count in zip(todo, counts):
        sample.measured = float(count.instructions) if count.instructions else None
        sample.reason = sample.reason or count.reason
        sample.arena_bytes = count.arena_bytes
        sample.arena_tail = None


def calibrate_host(device, count: int, seed: int = 0, progress=None, op_samples: int = 0) -> dict:
    """Sample, measure, fit and validate the latency model of a host device: `count` models of the
    search spaces and plain ones, and `op_samples` generated around each operator (`_op_samples`).
    ConfigError, before any work, for fewer than 8 models (a held-out split needs some) or a negative `op_samples`."""
    from ._op_samples import make_op_samples

    if count < 8:
        raise ConfigError(f"count: {count} is not allowed; expected 8 or more models (a held-out split needs some)")
    if op_samples < 0:
        raise ConfigError(f"op_samples: {op_samples} is not allowed; expected 0 or more")
    start = time.time()
    samples = make_samples(count, device.quantization, seed, progress=progress)
    if op_samples:
        samples += make_op_samples(op_samples, device.quantization, seed + 11)
    measure_samples(samples, device)
    return host_artifact(device, samples, seed, {"seconds": round(time.time() - start, 1)})


_RULERS = {
    "icount": "callgrind instructions inside the runtime's invoke, second of two invokes",
    "qemu": ("Arm instructions of the whole invoke (second of two, zeros as input) on TFLite Micro's Arm build under QEMU, "
             "counted by a plugin"),
    "wallclock": "wall-clock ms, LiteRT 1 thread, robust protocol (nas.measure.measure_wallclock)",
}


def host_artifact(device, samples: list[Sample], seed: int, extra_provenance: dict | None = None) -> dict:
    """Fit and validate on measured `samples`; the artifact with its samples and provenance."""
    priced_by = feature_set(device.runtime, device.measure, device.kernels)
    for s in samples:  # the features this device's kernels are priced by (records keep theirs)
        if s.tflite and s.measured:
            s.rows = features(kernels_from_tflite(s.tflite), priced_by)
    failures: dict[str, int] = {}
    for s in samples:
        if not s.measured and not s.arena_bytes:  # an arena-only sample was measured, for its arena
            key = f"{s.mode}: {s.reason or 'not measured'}"[:160]
            failures[key] = failures.get(key, 0) + 1
    fitted = fit_and_validate(samples, device.quantization, seed)
    return {
        "device": device.name, "unit": device.unit, "runtime": device.runtime, "measure": device.measure,
        "kind": "kernel-sum", "feature_set": priced_by, **fitted,
        "stand_in_spread": stand_in_spread(samples, fitted["modes"]),
        "arena": fit_arena(samples, seed) if device.runtime == "tflm" else None,
        "samples": sample_records(samples),
        "provenance": provenance(len(samples), seed, {
            "measured": sum(1 for s in samples if s.measured), "held_out_fraction": HELD_OUT_FRACTION,
            "sources": sorted({s.source for s in samples}), "not_measured": failures,
            "ruler": _RULERS[device.measure],
            **(extra_provenance or {}),
        }),
    }


