"""Calibration samples: converted models from every search space and from a family of plain
models outside them (strided and valid-padded convolutions, non-square kernels, pooling, flatten,
MLPs), in every mode a device runs.

Models are untrained: the kernels do the same work whatever the weights, but untrained statistics
make degenerate quantization ranges, so `settle()` first gives each model realistic batch-norm
statistics and spread-out biases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import CandidateFailed

__all__ = ["Sample", "make_samples", "settle"]


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
    """Realistic statistics for an untrained model: kernels drawn from `rng` (so the same seed makes
    the same model), batch-norm moving statistics from data, varied scales and offsets, classifier
    biases spread over a few units (so quantized logits have a usable range and no two bias
    tensors are identical)."""
    from ..backend import keras
    from ..candidate import initialize

    initialize(model, int(rng.integers(2**31)))
    for _ in range(steps):
        model(x, training=True)
    for layer in model.layers:
        if isinstance(layer, keras.layers.LayerNormalization) and layer.get_weights():
            # as trained layer norms have: an offset of exactly zero quantizes to a scale near zero,
            # which XNNPACK refuses (its input-to-output scale check), sending the int8 SUB of every
            # layer norm to TFLite's slow reference broadcast (callgrind: a tiny ViT's five cost 1.2M
            # instructions with zero offsets)
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if i == 0 else
                               rng.normal(0.0, 0.3, w.shape).astype(np.float32) for i, w in enumerate(layer.get_weights())])
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.normal(0.0, 0.3, beta.shape).astype(np.float32), mean, var])
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.permutation(np.linspace(-3, 3, bias.shape[0])).astype(np.float32)])
    return model


def _generic_model(rng: np.random.Generator):
    """A plain model outside the search spaces: conv/pool stacks or an MLP."""
    from ..backend import keras

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
    from ..candidate import convert
    from ..spec import build_model, load_space, space_names

    rng = np.random.default_rng(seed)
    spaces = [load_space(name) for name in space_names()]
    samples = []
    for i in range(count):
        mode = modes[i % len(modes)]
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


