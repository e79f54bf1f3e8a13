"""The layer plan of a spec: the one walk over the architecture that everything else reads.

`plan()` lists the layers a spec becomes (after the converter folds batch norm into the
convolutions and fuses ReLU6), with their shapes, parameters and MACs. The Keras builder
creates exactly these layers, and the analytic estimates (parameters, MACs, peak activation
memory) are sums and maxima over them, so they are available in microseconds, before training.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from ..errors import ConfigError
from ._arch import ArchSpec

__all__ = ["Layer", "plan", "check_io", "count_params", "count_deployed_params", "count_macs", "activation_peak_bytes",
           "weight_bytes", "BYTES_PER_ACTIVATION", "BYTES_PER_WEIGHT"]

#: Bytes per activation element in the converted model, by quantization mode.
BYTES_PER_ACTIVATION = {"float32": 4, "float16": 4, "dynamic_int8": 4, "int8": 1, "int16x8": 2}
#: Bytes per weight element in the converted model, by quantization mode.
BYTES_PER_WEIGHT = {"float32": 4.0, "float16": 2.0, "dynamic_int8": 1.0, "int8": 1.0, "int16x8": 1.0}


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # "conv" | "dwconv" | "add" | "gap" | "dense"
    in_shape: tuple[int, int, int]  # (height, width, channels); dense: (1, 1, features)
    out_shape: tuple[int, int, int]
    kernel: int = 1
    stride: int = 1
    relu6: bool = False
    residual_of: str | None = None  # for "add": the block input it adds back

    @property
    def params(self) -> int:
        """Keras parameters, batch-norm statistics included (conv layers carry a BN)."""
        cin, cout = self.in_shape[2], self.out_shape[2]
        if self.kind == "conv":
            return self.kernel * self.kernel * cin * cout + 4 * cout
        if self.kind == "dwconv":
            return self.kernel * self.kernel * cin + 4 * cin
        if self.kind == "dense":
            return cin * cout + cout
        return 0

    @property
    def deployed_params(self) -> int:
        """Parameters left after conversion: batch norm folds into one bias per channel."""
        cin, cout = self.in_shape[2], self.out_shape[2]
        if self.kind == "conv":
            return self.kernel * self.kernel * cin * cout + cout
        if self.kind == "dwconv":
            return self.kernel * self.kernel * cin + cin
        return self.params

    @property
    def macs(self) -> int:
        h, w, cout = self.out_shape
        cin = self.in_shape[2]
        if self.kind == "conv":
            return h * w * self.kernel * self.kernel * cin * cout
        if self.kind == "dwconv":
            return h * w * self.kernel * self.kernel * cin
        if self.kind == "dense":
            return cin * cout
        return 0


def _same(size: int, stride: int) -> int:
    return -(-size // stride)


def check_io(in_channels: int, num_classes: int) -> None:
    """Refuse (ConfigError) an input of fewer than 1 channel or a classifier of fewer than 2 classes:
    no model has them, so nothing planned, built or priced from them would mean anything."""
    for name, value, least in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2)):
        try:
            allowed = operator.index(value) >= least
        except TypeError:  # a float, a string, None
            allowed = False
        if not allowed:
            raise ConfigError(f"{name}: {value!r} is not allowed; expected a whole number, {least} or more")


def plan(spec: ArchSpec, in_channels: int, num_classes: int) -> list[Layer]:
    check_io(in_channels, num_classes)
    layers: list[Layer] = []
    h = spec.resolution
    shape = (h, h, in_channels)

    def conv(name: str, cout: int, kernel: int = 1, stride: int = 1, relu6: bool = True, kind: str = "conv") -> None:
        nonlocal shape
        size = _same(shape[0], stride)
        out = (size, size, shape[2] if kind == "dwconv" else cout)
        layers.append(Layer(name, kind, shape, out, kernel, stride, relu6))
        shape = out

    conv("stem", spec.stem_channels, 3, spec.stem_stride)
    for s, stage in enumerate(spec.stages, start=1):
        for b in range(1, stage.depth + 1):
            prefix = f"s{s}b{b}"
            block_in = shape
            block_in_name = layers[-1].name
            stride = stage.stride if b == 1 else 1
            if stage.expansion != 1:
                conv(f"{prefix}_expand", block_in[2] * stage.expansion)
            conv(f"{prefix}_dw", 0, stage.kernel, stride, kind="dwconv")
            conv(f"{prefix}_project", stage.channels, relu6=False)
            if stride == 1 and block_in[2] == stage.channels:
                layers.append(Layer(f"{prefix}_add", "add", shape, shape, residual_of=block_in_name))
    if spec.head_channels:
        conv("head", spec.head_channels)
    layers.append(Layer("pool", "gap", shape, (1, 1, shape[2])))
    layers.append(Layer("classifier", "dense", (1, 1, shape[2]), (1, 1, num_classes)))
    return layers


def count_params(spec: ArchSpec, in_channels: int, num_classes: int) -> int:
    """Keras parameter count (batch-norm statistics included)."""
    return sum(layer.params for layer in plan(spec, in_channels, num_classes))


def count_deployed_params(spec: ArchSpec, in_channels: int, num_classes: int) -> int:
    return sum(layer.deployed_params for layer in plan(spec, in_channels, num_classes))


def weight_bytes(spec: ArchSpec, in_channels: int, num_classes: int) -> float:
    """Bytes of weights and biases in the converted model: a lower bound of its .tflite size."""
    per = BYTES_PER_WEIGHT[spec.quantization]
    total = 0.0
    for layer in plan(spec, in_channels, num_classes):
        biases = layer.out_shape[2] if layer.kind in ("conv", "dwconv", "dense") else 0
        total += (layer.deployed_params - biases) * per + biases * (4 if spec.quantization != "float16" else 2)
    return total


def count_macs(spec: ArchSpec, in_channels: int, num_classes: int) -> int:
    return sum(layer.macs for layer in plan(spec, in_channels, num_classes))


def _elements(shape: tuple[int, int, int]) -> int:
    return shape[0] * shape[1] * shape[2]


def activation_peak_bytes(spec: ArchSpec, in_channels: int, num_classes: int) -> int:
    """Peak bytes of live activations over the layer sequence (tensor liveness, no overheads).

    At each layer its input and output are live, plus any block input still waiting for the
    residual add. This is the floor of what any memory planner can reach for this graph.
    """
    width = BYTES_PER_ACTIVATION[spec.quantization]
    layers = plan(spec, in_channels, num_classes)
    pending: dict[str, int] = {}  # block inputs held for a later add: name -> elements
    adds = {layer.residual_of for layer in layers if layer.kind == "add"}
    previous = "input"
    peak = 0
    for layer in layers:
        held = sum(n for name, n in pending.items() if name != previous)
        live = _elements(layer.in_shape) + _elements(layer.out_shape) + held
        if layer.kind == "add":  # its second input is the held block input, counted above
            pending.pop(layer.residual_of, None)
        peak = max(peak, live)
        if layer.name in adds:
            pending[layer.name] = _elements(layer.out_shape)
        previous = layer.name
    return peak * width
