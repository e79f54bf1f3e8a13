"""The microcontroller board catalog as a prediction reads it: the artifact's name, the share of a
board's memory kept for the application, and the kernel classes a board prices.

A board's latency is the host TFLite Micro instruction model's (`host-tflm-icount`, int8) cost of
the model, split by kernel class: `conv` (k x k convolutions), `pointwise` (1 x 1), `dwconv`, `fc`,
and `other` (pooling, element-wise, reshapes, per-operator overhead), each class times the board's
milliseconds per host instruction for it (`Device.predict`). `nas.calibration` fits those factors
(its `_board_fit`) and writes the catalog (`latency_models/mcu-catalog.json`).
"""

from __future__ import annotations

__all__ = ["CATALOG_ARTIFACT", "APP_RESERVE", "MAIN_CLASSES", "KERNEL_CLASSES", "coef_digest", "kernel_class",
           "class_instructions", "new_model_error", "energy_errors"]

CATALOG_ARTIFACT = "mcu-catalog"
#: The share of a board's SRAM and flash left to the application when the board's memory becomes a
#: study's budget (the model gets the rest): firmware, stacks, buffers and the runtime's own code.
APP_RESERVE = 0.25
MAIN_CLASSES = ("conv", "pointwise", "dwconv", "fc")
KERNEL_CLASSES = (*MAIN_CLASSES, "other")


def coef_digest(coef: dict[str, float]) -> str:
    """A digest of the host instruction model's coefficients: the catalog is only valid with those it was fitted on."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(coef, sort_keys=True).encode()).hexdigest()[:16]


def kernel_class(kernel) -> str:
    if kernel.family == "conv":
        return "pointwise" if kernel.window == 1 else "conv"
    if kernel.family == "transpose_conv":
        return "conv"
    if kernel.family == "unidirectional_sequence_lstm":  # its work is its gates' matrix-vector products
        return "fc"
    return kernel.family if kernel.family in ("dwconv", "fc") else "other"


def class_instructions(kernels, coef: dict[str, float], feature_set: str = "kernel") -> dict[str, float]:
    """Instructions per kernel class from an instruction model's coefficients (`feature_set`: the
    features its artifact prices, `nas.latency.feature_set`); per-inference and per-operator terms go to `other`."""
    from ._features import kernel_features

    out = dict.fromkeys(KERNEL_CLASSES, 0.0)
    out["other"] += coef.get("graph:n", 0.0) + coef.get("graph:ops", 0.0) * len(kernels)
    for kernel in kernels:
        out[kernel_class(kernel)] += sum(coef.get(name, 0.0) * value
                                         for name, value in kernel_features(kernel, feature_set).items())
    return out


def new_model_error(artifact: dict, entry: dict, spec: bool, base_artifact: dict | None) -> tuple[float, float]:
    """A board's error (mean, max) for a model no board has run: the catalog's (each reference model left
    out of it), compounded, where the catalog was fitted on counts, with the base kernel model's held-out
    error (`base_artifact`: the entry's base device's) for the case: search-space models for a spec, whole
    networks outside the spaces for a file (not the single-operator models calibration generates, which a
    board is not given)."""
    mean, largest = entry["unseen_mean_pct"], entry["unseen_max_pct"]
    if entry.get("base_device") not in artifact.get("counted", ()):
        return mean, largest
    validation = (base_artifact or {}).get("validation") or {}
    held_out = validation.get("all_search_spaces" if spec else "all_outside_spaces") or {}
    return _compound(mean, held_out.get("mape_pct", 0.0)), _compound(largest, held_out.get("max_error_pct", 0.0))


def _compound(a_pct: float, b_pct: float) -> float:
    """Two relative errors in a row: (1 + a)(1 + b) - 1, in percent."""
    return 100 * ((1 + a_pct / 100) * (1 + b_pct / 100) - 1)


def energy_errors(entry: dict, error_pct: float, error_max_pct: float) -> tuple[float | None, float | None]:
    """A board's energy error (mean, max) for a model priced with latency error (`error_pct`,
    `error_max_pct`): energy is mean power x predicted latency, so both errors compound,
    (1 + latency) x (1 + power) - 1, with the power model's own leave-one-model-out error from the
    catalog entry. Never below the latency error; None where the catalog has no power error (refit it)."""
    power_mean, power_max = entry.get("power_loo_mean_pct"), entry.get("power_loo_max_pct")
    if power_mean is None or power_max is None:
        return None, None
    return _compound(error_pct, power_mean), _compound(error_max_pct, power_max)
