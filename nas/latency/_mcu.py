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
           "class_instructions"]

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
