"""Fitting the microcontroller board catalog: every board of the MLPerf Tiny results (`_boards`), priced
by one joint latency model (`_board_fit`) on the host TFLite Micro instruction model's kernel classes
(`nas.latency.class_instructions`, what a prediction splits by class too).

`calibrate_boards` builds the four reference models (seeded), splits their host instructions by
kernel class, fits the catalog and returns the artifact (`latency_models/mcu-catalog.json`) and one
device profile per board (`devices/<name>.yaml`); `nas calibrate --boards` writes them.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..latency import CATALOG_ARTIFACT, KERNEL_CLASSES, class_instructions, coef_digest, energy_errors
from ._board_fit import EXACT_SHAPE, PRIOR_SD, RESIDUAL_SD, SHAPE_SD, fit_joint
from ._boards import LEFT_OUT, ROWS_FILE, PARTS_FILE, board_profiles
from ._fitting import provenance

__all__ = ["calibrate_boards", "reference_class_instructions", "device_profile"]

_DEVICE_RUNTIME = {"tflm": "tflm", "tflm-cmsisnn": "tflm", "tflm-mvp": "tflm", "tflm-helium": "tflm"}
_FAMILY_WORDS = {
    "tflm": "TFLite Micro with its reference kernels", "tflm-cmsisnn": "TFLite Micro with CMSIS-NN kernels",
    "tflm-helium": "TFLite Micro with CMSIS-NN Helium (MVE) kernels",
    "tflm-mvp": "TFLite Micro with Silicon Labs' MVP accelerator", "xcubeai": "STM32Cube.AI (X-CUBE-AI)",
    "stedgeai": "ST Edge AI (preview, DSP co-processor)", "plumerai": "Plumerai Inference Engine",
    "hale": "Bosch Hardware-Aware Lowering Engine", "microtvm": "microTVM", "onnc": "ONNC (Skymizer)",
}


def _host_coef() -> dict[str, float]:
    from ..latency import load_device

    artifact = load_device("host-tflm-icount").artifact
    if artifact is None or "int8" not in artifact.get("modes", {}):
        raise ConfigError("host-tflm-icount has no int8 latency model: the board catalog prices kernel classes with it")
    return artifact["modes"]["int8"]["coef"]


def reference_class_instructions(seed: int = 0) -> dict[str, dict[str, float]]:
    """Host TFLite Micro instructions per kernel class of each reference model, built int8 and seeded."""
    from ..candidate import convert
    from ..latency import kernels_from_tflite
    from ._reference_models import REFERENCE_MODELS, build_reference
    from ._sampling import settle

    coef = _host_coef()
    out = {}
    for i, name in enumerate(REFERENCE_MODELS):
        rng = np.random.default_rng(seed + i)
        model = build_reference(name)
        x = rng.uniform(0, 1, (16, *REFERENCE_MODELS[name][1])).astype(np.float32)
        settle(model, x, rng)
        out[name] = class_instructions(kernels_from_tflite(convert(model, "int8", x)), coef)
    return out


#: The catalog's target for a profile's largest leave-one-model-out error (issue 18).
MAX_LOO_TARGET_PCT = 30.0


def _miss(profile, entry: dict) -> str:
    """Why a profile misses the leave-one-model-out target, in words (empty when it meets it)."""
    if entry["loo_max_pct"] <= MAX_LOO_TARGET_PCT:
        return ""
    worst = max(entry["refs"], key=lambda r: abs(entry["refs"][r]["loo_ms"] / entry["refs"][r]["published_ms"] - 1))
    in_sample = max(abs(r["fitted_ms"] / r["published_ms"] - 1) for r in entry["refs"].values())
    if profile.runtime in EXACT_SHAPE:
        why = (f"its kernel classes keep the host's reference-kernel proportions, which the board does not follow "
               f"(fitted on every result, it still misses one by {100 * in_sample:.0f}%)")
    elif entry["lobo"].get("note", "").startswith("no other board"):
        why = "no other board in the catalog runs this runtime, so a left-out model's cost shape comes from other runtimes"
    else:
        why = "its published results do not follow one cost shape"
    return (f". MISSES the catalog's {MAX_LOO_TARGET_PCT:.0f}% target for its largest leave-one-model-out error "
            f"({entry['loo_max_pct']:.0f}%, on {worst}): {why}")


def device_profile(profile, entry: dict) -> dict:
    """The `devices/<name>.yaml` mapping of one catalog profile."""
    runtime_words = f"{profile.runtime_name} {profile.version}".strip() + (f" ({profile.variant})" if profile.variant else "")
    lobo = entry["lobo"].get("mean_abs_error_pct")
    return {
        "name": profile.name,
        "description": f"{profile.part} ({profile.core} at {profile.clock_mhz:g} MHz) running {runtime_words}"
                       + (f"; accelerator: {profile.accelerator}" if profile.accelerator else ""),
        "runtime": _DEVICE_RUNTIME.get(profile.runtime, profile.runtime),
        "runtime_family": profile.runtime,
        "unit": "ms",
        "core": profile.core,
        "clock_mhz": profile.clock_mhz,
        "sram_kb": profile.sram_kb,
        "flash_kb": profile.flash_kb,
        "memory_source": profile.memory_source,
        "quantization": ["int8"],
        "latency_source": "model",
        "latency_model": CATALOG_ARTIFACT,
        "base_device": "host-tflm-icount",
        "board": profile.board,
        "board_runtime": runtime_words,
        "measure": "published",
        "calibration": (f"{_FAMILY_WORDS.get(profile.runtime, profile.runtime)}: host TFLite Micro instructions per kernel "
                        f"class, scaled by the board catalog fitted jointly on every published MLPerf Tiny Cortex-M result; "
                        f"{len(profile.latency_ms)} of this board's own results; leave-one-model-out mean "
                        f"{entry['loo_mean_pct']:.0f}%, max {entry['loo_max_pct']:.0f}%; for a model no board has run "
                        f"(each reference model left out of the whole catalog) mean {entry['unseen_mean_pct']:.0f}%, "
                        f"max {entry['unseen_max_pct']:.0f}%"
                        + (f"; leave-one-board-out {lobo:.0f}%" if lobo is not None else "")
                        + "; int8 only, as those results are" + _miss(profile, entry)),
        "sparsity_modes": [],
        "sparsity_note": "no sparse kernels in the published runtimes' int8 paths: pruning is not searched",
    }


def calibrate_boards(seed: int = 0) -> tuple[dict, list[dict]]:
    """Fit the board catalog; returns the artifact and the device profiles it prices."""
    profiles = board_profiles()
    if not profiles:
        raise ConfigError(f"latency_models/{ROWS_FILE} yields no profile with {3}+ reference results")
    refs = reference_class_instructions(seed)
    fit = fit_joint(profiles, refs)
    entries = fit["profiles"]
    loo = [e["loo_mean_pct"] for e in entries.values()]
    lobo = [e["lobo"]["mean_abs_error_pct"] for e in entries.values() if "mean_abs_error_pct" in e["lobo"]]
    energy = [e["energy_loo_mean_pct"] for e in entries.values() if e["energy_loo_mean_pct"] is not None]
    # what a search candidate's energy carries: its latency's unseen error compounded with the power model's
    energy_unseen = [energy_errors(e, e["unseen_mean_pct"], e["unseen_max_pct"]) for e in entries.values()
                     if e["power_loo_mean_pct"] is not None]
    families: dict[str, list[float]] = {}
    for p in profiles:
        families.setdefault(p.runtime, []).append(entries[p.name]["loo_mean_pct"])
    for p in profiles:
        entries[p.name].update(core=p.core, clock_mhz=p.clock_mhz, runtime=p.runtime, version=p.version,
                               part=p.part, sources=p.sources, energy_uj_published=p.energy_uj)
    artifact = {
        "device": CATALOG_ARTIFACT, "unit": "ms", "kind": "board-catalog", "base_device": "host-tflm-icount",
        "base_coef_digest": coef_digest(_host_coef()),
        "classes": list(KERNEL_CLASSES), "reference_instructions": refs, "profiles": entries, "terms": fit["terms"],
        "prior_sd": {**PRIOR_SD, "shape": SHAPE_SD}, "residual_sd": RESIDUAL_SD, "left_out": LEFT_OUT,
        "validation": {
            "profiles": len(profiles), "rows": fit["rows"],
            "loo_mean_pct": float(np.mean(loo)), "loo_max_pct": max(e["loo_max_pct"] for e in entries.values()),
            "unseen_mean_pct": float(np.mean([e["unseen_mean_pct"] for e in entries.values()])),
            "unseen_max_pct": max(e["unseen_max_pct"] for e in entries.values()),
            "profiles_over_30pct": sorted(n for n, e in entries.items() if e["loo_max_pct"] > 30),
            "lobo_mean_pct": float(np.mean(lobo)) if lobo else None, "lobo_boards": len(lobo),
            "energy_loo_mean_pct": float(np.mean(energy)) if energy else None, "energy_profiles": len(energy),
            "power_loo_mean_pct": (float(np.mean([e["power_loo_mean_pct"] for e in entries.values()
                                                  if e["power_loo_mean_pct"] is not None])) if energy_unseen else None),
            "energy_unseen_mean_pct": float(np.mean([m for m, _ in energy_unseen])) if energy_unseen else None,
            "energy_unseen_max_pct": max(x for _, x in energy_unseen) if energy_unseen else None,
            "by_family": {f: {"profiles": len(v), "loo_mean_pct": float(np.mean(v))} for f, v in sorted(families.items())},
        },
        "provenance": provenance(fit["rows"], seed, {
            "timings": f"latency_models/{ROWS_FILE} (closed-division Cortex-M rows of shared/reference/mlperf_tiny_latency.csv; "
                       "source_path names each results file in mlcommons/tiny_results_v0.5..v1.3)",
            "memory": f"latency_models/{PARTS_FILE} (datasheets named per part)",
            "shape": "host-tflm-icount int8 latency model, per kernel class, of the seeded reference models"}),
    }
    return artifact, [device_profile(p, entries[p.name]) for p in profiles]
