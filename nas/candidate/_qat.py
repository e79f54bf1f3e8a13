"""Quantization-aware training (tensorflow-model-optimization), int8 only.

After float training, `qat_finetune` wraps the model with tfmot's default 8-bit scheme, sets every
fake-quantization range from the float model's own weights and activations (tfmot starts them at
[-6, 6], or [0, 0] for the input, and moves them slowly: fine-tuning from those ranges starts from
garbage), and fine-tunes a few epochs at a tenth of the learning rate on the same data, targets and
augmentation as the float training. The QAT model converts through the same `convert` as PTQ.

int16x8 has no QAT: tfmot's 8-bit scheme converted to int16x8 fails the converter's softmax check,
and its n-bit scheme's asymmetric int16 zero points are refused by LiteRT and TFLite Micro
(measured, tfmot 0.8); int16x8 models keep post-training quantization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import CandidateFailed
from ._train import TrainConfig, TrainingData, compile_for, fit_epochs

__all__ = ["QATModel", "qat_finetune", "QAT_UNSUPPORTED"]

#: Modes QAT does not serve, and why (see the module docstring).
QAT_UNSUPPORTED = {"int16x8": "tfmot has no int16x8 QAT that LiteRT or TFLite Micro run: post-training quantization",
                   "float32": "not quantized", "float16": "float16 weights only: post-training",
                   "dynamic_int8": "weights-only quantization: post-training"}


@dataclass(frozen=True)
class QATModel:
    model: object  # the fine-tuned tfmot model, ready to convert
    unannotated: tuple[str, ...]  # layers tfmot left without fake quantization (reported, not hidden)
    epochs_run: int


def qat_finetune(model, data: TrainingData, x_val, cfg: TrainConfig, num_classes: int) -> QATModel:
    """A QAT copy of the float `model`, ranges calibrated from float activations, fine-tuned for
    `cfg.qat_epochs` on `data`. tfmot refusing the model is a `CandidateFailed` at stage "qat"."""
    import tensorflow_model_optimization as tfmot

    try:
        qmodel = tfmot.quantization.keras.quantize_model(model)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise CandidateFailed("qat", f"tfmot cannot quantize this model: {' '.join(str(exc).split())[:200]}") from None
    wrapper = tfmot.quantization.keras.QuantizeWrapperV2
    unannotated = tuple(layer.name for layer in qmodel.layers
                        if not isinstance(layer, wrapper) and type(layer).__name__ not in ("InputLayer", "QuantizeLayer"))
    calibrate_ranges(qmodel, model, data.x)
    steps = max(1, math.ceil(len(data.x) / cfg.batch_size))
    compile_for(qmodel, cfg, num_classes, steps, scale=0.1, epochs=cfg.qat_epochs)
    epochs = fit_epochs(qmodel, data.x, data.targets, x_val, data.val_targets, cfg.qat_epochs, cfg, None, [],
                        sample_weight=data.sample_weight, augmentation=data.augmentation)
    return QATModel(qmodel, unannotated, epochs)


def _variables(layer) -> dict:
    return {v.name.split("/")[-1].split(":")[0]: v for v in layer.weights}


def calibrate_ranges(qmodel, float_model, x: np.ndarray, samples: int = 1024) -> None:
    """Set the fake-quantization ranges of `qmodel` to what the float model's weights and
    activations span on (up to `samples` of) `x`, always including 0 as the converter requires."""
    from ..backend import keras
    import tensorflow_model_optimization as tfmot

    wrapper = tfmot.quantization.keras.QuantizeWrapperV2
    x = x[:samples]
    layers = {layer.name: layer for layer in float_model.layers}
    probes = {}
    for w in qmodel.layers:
        vs = _variables(w)
        if type(w).__name__ == "QuantizeLayer":
            vs[w.name + "_min"].assign(min(float(x.min()), 0.0))
            vs[w.name + "_max"].assign(max(float(x.max()), 0.0))
            continue
        if not isinstance(w, wrapper):
            continue
        inner = layers[w.layer.name]
        if "output_min" in vs:
            probes[w.layer.name] = ("out", inner.output, vs)
        if "pre_activation_min" in vs and isinstance(inner, keras.layers.Dense):
            probes[w.layer.name] = ("pre", inner.input, vs)  # Dense with a non-linear activation: its pre-activation
        for kind in ("kernel", "depthwise_kernel"):
            if kind + "_min" not in vs:
                continue
            kernel = [v for v in w.weights if v.name.split(":")[0].endswith(f"{w.layer.name}/{kind}")][0].numpy()
            lo_v, hi_v = vs[kind + "_min"], vs[kind + "_max"]
            per_axis = lo_v.shape.rank == 1
            axes = tuple(range(kernel.ndim - 1)) if per_axis else None
            lo, hi = kernel.min(axis=axes), kernel.max(axis=axes)
            if per_axis and lo_v.shape[0] != np.size(lo):  # depthwise: per-axis over a last dimension of 1
                lo, hi = np.full(lo_v.shape, kernel.min()), np.full(hi_v.shape, kernel.max())
            lo_v.assign(np.minimum(lo, 0).astype("float32"))
            hi_v.assign(np.maximum(hi, 0).astype("float32"))
    if not probes:
        return
    keys = list(probes)
    probe = keras.Model(float_model.input, [probes[k][1] for k in keys])
    outputs = probe.predict(x, batch_size=256, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for key, out in zip(keys, outputs):
        kind, _, vs = probes[key]
        if kind == "pre":
            weights = layers[key].get_weights()
            out = out @ weights[0] + (weights[1] if layers[key].use_bias else 0)
            lo_v, hi_v = vs["pre_activation_min"], vs["pre_activation_max"]
        else:
            lo_v, hi_v = vs["output_min"], vs["output_max"]
        lo_v.assign(min(float(out.min()), 0.0))
        hi_v.assign(max(float(out.max()), 0.0))
