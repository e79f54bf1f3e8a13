"""Spec -> Keras model, layer for layer as `plan` lists them.

Only operators TFLite Micro runs: CONV_2D and DEPTHWISE_CONV_2D (batch norm folded, ReLU6
fused), ADD, MEAN (global average pooling), FULLY_CONNECTED and SOFTMAX.
"""

from __future__ import annotations

from ._plan import plan
from ._arch import ArchSpec

__all__ = ["build_model"]


def build_model(spec: ArchSpec, in_channels: int, num_classes: int, dropout: float = 0.1, seed: int = 0):
    """A tf-keras functional model taking float inputs in [0, 1] of shape (r, r, in_channels).

    Every random part is seeded from `seed` (Glorot-uniform kernels, dropout): unseeded, tf-keras
    would draw each layer's seed from Python's global `random`, changing its caller's state."""
    from ..backend import keras

    L = keras.layers
    count = iter(range(1, 10_000))

    def init():
        return keras.initializers.GlorotUniform(seed=seed * 10_007 + next(count))

    inputs = keras.Input((spec.resolution, spec.resolution, in_channels), name="image")
    tensors = {"input": inputs}
    x = inputs
    for layer in plan(spec, in_channels, num_classes):
        if layer.kind in ("conv", "dwconv"):
            if layer.kind == "conv":
                x = L.Conv2D(layer.out_shape[2], layer.kernel, layer.stride, "same", use_bias=False,
                             kernel_initializer=init(), name=layer.name)(x)
            else:
                x = L.DepthwiseConv2D(layer.kernel, layer.stride, "same", use_bias=False, depthwise_initializer=init(),
                                      name=layer.name)(x)
            # momentum 0.9: short proxy training leaves 0.99 moving statistics far from converged
            x = L.BatchNormalization(momentum=0.9, name=f"{layer.name}_bn")(x)
            if layer.relu6:
                x = L.ReLU(6.0, name=f"{layer.name}_relu6")(x)
        elif layer.kind == "add":
            x = L.Add(name=layer.name)([tensors[layer.residual_of], x])
        elif layer.kind == "gap":
            x = L.GlobalAveragePooling2D(name=layer.name)(x)
            if dropout:
                x = L.Dropout(dropout, seed=seed, name="dropout")(x)
        elif layer.kind == "dense":
            x = L.Dense(layer.out_shape[2], activation="softmax", kernel_initializer=init(), name=layer.name)(x)
        else:  # pragma: no cover - plan() emits only the kinds above
            raise AssertionError(layer.kind)
        tensors[layer.name] = x
    return keras.Model(inputs, x, name=f"nas_{spec.hash}")
