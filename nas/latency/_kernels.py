"""A model as the list of kernels a runtime executes, read from a .tflite flatbuffer or derived
from a spec (`_features` turns the list into what latency models are fitted on).

The two sources agree: `kernels_from_spec(spec)` lists what the converter emits for that spec
(batch norm folded, ReLU6 fused into the convolutions, float16 weights dequantized, hybrid
weights where dynamic-range quantization quantizes them), so a model fitted on measured .tflite
files predicts a spec in microseconds, before anything is built. Any .tflite made of supported
operators can be read, not only models of our search spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..spec import ArchSpec, plan
from ._flatbuffer import constant_tensors, elements, enum_names, op_name, open_model

__all__ = ["Kernel", "kernels_from_tflite", "kernels_from_spec", "model_mode", "inside_taps", "HYBRID_MIN_WEIGHTS"]

#: TFLite builtin operator -> the kernel family a latency model prices.
_OPS = {
    "CONV_2D": "conv", "DEPTHWISE_CONV_2D": "dwconv", "FULLY_CONNECTED": "fc", "ADD": "add", "MUL": "mul",
    "MEAN": "mean", "AVERAGE_POOL_2D": "avgpool", "MAX_POOL_2D": "maxpool", "SOFTMAX": "softmax",
    "RESHAPE": "reshape", "SQUEEZE": "reshape", "QUANTIZE": "quantize", "DEQUANTIZE": "dequantize", "PAD": "pad",
    "RELU": "act", "RELU6": "act", "LOGISTIC": "act", "TANH": "act", "HARD_SWISH": "act", "CONCATENATION": "concat",
}
#: Which features each family carries (every family also counts itself: `n`).
_FAMILY_FEATURES = {
    "conv": ("n", "in", "out", "macs", "taps", "w", "vmacs", "vtaps"),
    "dwconv": ("n", "in", "out", "macs", "w", "vmacs"),
    "fc": ("n", "in", "out", "macs", "w"),
    "maxpool": ("n", "in", "out", "px"),
    "avgpool": ("n", "in", "out", "px"),
}
_DEFAULT_FEATURES = ("n", "in", "out")
#: Dynamic-range quantization leaves weight tensors smaller than this in float (TFLite's rule).
HYBRID_MIN_WEIGHTS = 1024


@dataclass(frozen=True)
class Kernel:
    """One operator as the runtime executes it."""

    family: str  # conv, dwconv, fc, add, mean, avgpool, maxpool, softmax, reshape, quantize, dequantize, ...
    dtype: str  # activation type: float32, int8, int16; "hybrid" for float activations with int8 weights
    inputs: tuple[int, ...]  # elements of each activation input (constants excluded)
    out: int  # output elements
    macs: int = 0
    taps: int = 0  # output elements x filter positions (per-tap overhead of reference convolutions)
    weights: int = 0  # weight elements
    op: str = ""  # the TFLite builtin name
    vmacs: int = 0  # MACs over filter positions inside the input (reference kernels skip padding)
    vtaps: int = 0  # filter positions inside the input, over all output elements
    channels: int = 0  # output channels (conv, dwconv) or units (fc)
    window: int = 0  # filter positions, kh * kw (1 for fc)
    stride: int = 1

    def features(self) -> dict[str, float]:
        values = {"n": 1, "in": sum(self.inputs), "out": self.out, "macs": self.macs, "taps": self.taps, "w": self.weights,
                  "vmacs": self.vmacs, "vtaps": self.vtaps, "px": self.out // self.channels if self.channels else 0}
        key = self.family + ("/hybrid" if self.dtype == "hybrid" else "")
        return {f"{key}:{name}": float(values[name]) for name in _FAMILY_FEATURES.get(self.family, _DEFAULT_FEATURES)}


@lru_cache(maxsize=65536)
def inside_taps(size: int, out: int, kernel: int, stride: int, same: bool) -> int:
    """Filter positions that fall inside the input along one axis, summed over the outputs."""
    pad = max((out - 1) * stride + kernel - size, 0) // 2 if same else 0
    total = 0
    for o in range(out):
        start = o * stride - pad
        total += max(0, min(start + kernel, size) - max(start, 0))
    return total


def kernels_from_tflite(source: str | Path | bytes) -> list[Kernel]:
    """The kernels of a .tflite model's main subgraph, in execution order."""
    schema, model, graph = open_model(source)
    op_names = enum_names(schema.BuiltinOperator)
    type_names = {k: v.lower() for k, v in enum_names(schema.TensorType).items()}
    constant = constant_tensors(model, graph, op_names)
    kernels = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name = op_name(model, op, op_names)
        inputs = [int(j) for j in op.InputsAsNumpy() if j >= 0] if op.InputsLength() else []
        tensors = [graph.Tensors(j) for j in inputs]
        outputs = [graph.Tensors(int(j)) for j in op.OutputsAsNumpy()] if op.OutputsLength() else []
        activations = [graph.Tensors(j) for j in inputs if j not in constant]
        constants = [graph.Tensors(j) for j in inputs if j in constant]
        out = sum(elements(t) for t in outputs)
        family = _OPS.get(name, "other")
        first = activations[0] if activations else (tensors[0] if tensors else None)
        dtype = type_names.get(first.Type(), "float32") if first is not None else "float32"
        macs = taps = weights = vmacs = vtaps = channels = window = 0
        stride = 1
        if family in ("conv", "dwconv", "fc") and len(tensors) >= 2:
            filt = tensors[1]
            shape = [int(d) for d in filt.ShapeAsNumpy()]
            weights = elements(filt)
            channels = int(outputs[0].ShapeAsNumpy()[-1]) if outputs else 0
            if family == "conv":  # filter (out_c, kh, kw, in_c)
                window = shape[1] * shape[2]
                taps = out * window
                macs = taps * shape[3]
            elif family == "dwconv":  # filter (1, kh, kw, out_c)
                window = shape[1] * shape[2]
                taps = macs = out * window
            else:  # filter (units, in_features)
                window = 1
                macs = out * shape[-1]
            if family in ("conv", "dwconv") and activations:
                vtaps, stride = _inside(schema, op, family, activations[0], outputs[0], shape)
                vmacs = vtaps * (shape[3] if family == "conv" else 1)
            if dtype == "float32" and type_names.get(filt.Type()) == "int8":
                dtype = "hybrid"
        if family in ("maxpool", "avgpool") and outputs:  # pooling runs per output pixel, then per channel
            channels = int(outputs[0].ShapeAsNumpy()[-1])
        if family == "dequantize" and not activations:
            activations = constants  # float16 weights, dequantized at run time
        kernels.append(Kernel(family, dtype, tuple(elements(t) for t in activations), out, macs, taps, weights, name,
                              vmacs, vtaps, channels, window, stride))
    return kernels


def _inside(schema, op, family: str, source, result, filt: list[int]) -> tuple[int, int]:
    """vtaps of a convolution (in-image filter positions x output channels) and its stride
    (the larger of the two; XNNPACK only asks whether it is 1), from its options."""
    options_type = schema.Conv2DOptions if family == "conv" else schema.DepthwiseConv2DOptions
    table = op.BuiltinOptions()
    options = options_type()
    options.Init(table.Bytes, table.Pos)
    same = options.Padding() == schema.Padding.SAME
    _, h, w, _ = (int(d) for d in source.ShapeAsNumpy())
    _, oh, ow, oc = (int(d) for d in result.ShapeAsNumpy())
    vtaps = inside_taps(h, oh, filt[1], options.StrideH(), same) * inside_taps(w, ow, filt[2], options.StrideW(), same) * oc
    return vtaps, max(options.StrideH(), options.StrideW())


def model_mode(source: str | Path | bytes | list[Kernel]) -> str:
    """The quantization mode a .tflite model (or its kernel list) was converted in, from its tensor types."""
    kernels = source if isinstance(source, list) else kernels_from_tflite(source)
    dtypes = {k.dtype for k in kernels}
    if any(k.family == "dequantize" and k.dtype == "float16" for k in kernels):
        return "float16"
    if "hybrid" in dtypes:
        return "dynamic_int8"
    if "int16" in dtypes:
        return "int16x8"
    if "int8" in dtypes:
        return "int8"
    return "float32"


# ---------------------------------------------------------------- specs

_MODE_DTYPE = {"float32": "float32", "float16": "float32", "dynamic_int8": "float32", "int8": "int8", "int16x8": "int16"}


def kernels_from_spec(spec: ArchSpec, in_channels: int, num_classes: int) -> list[Kernel]:
    """The kernels the converter emits for `spec` in its quantization mode (no TensorFlow needed)."""
    mode = spec.quantization
    dtype = _MODE_DTYPE[mode]
    kernels: list[Kernel] = []
    dequantize: list[Kernel] = []
    for layer in plan(spec, in_channels, num_classes):
        h, w, c = layer.in_shape
        oh, ow, oc = layer.out_shape
        n_in, n_out = h * w * c, oh * ow * oc
        if layer.kind in ("conv", "dwconv", "dense"):
            family = {"conv": "conv", "dwconv": "dwconv", "dense": "fc"}[layer.kind]
            k = layer.kernel  # 1 for dense
            weights = k * k * c * (1 if family == "dwconv" else oc)
            bias = oc
            taps = n_out * k * k if family != "fc" else 0
            macs = layer.macs
            hybrid = mode == "dynamic_int8" and weights >= HYBRID_MIN_WEIGHTS
            kernel_dtype = "hybrid" if hybrid else dtype
            if mode == "float16":
                dequantize += [Kernel("dequantize", "float16", (weights,), weights, op="DEQUANTIZE"),
                               Kernel("dequantize", "float16", (bias,), bias, op="DEQUANTIZE")]
            op = {"conv": "CONV_2D", "dwconv": "DEPTHWISE_CONV_2D", "fc": "FULLY_CONNECTED"}[family]
            vtaps = vmacs = 0
            if family != "fc":
                vtaps = inside_taps(h, oh, k, layer.stride, True) * inside_taps(w, ow, k, layer.stride, True) * oc
                vmacs = vtaps * (c if family == "conv" else 1)
            kernels.append(Kernel(family, kernel_dtype, (n_in,), n_out, macs, taps, weights, op, vmacs, vtaps,
                                  oc, k * k, layer.stride if family != "fc" else 1))
        elif layer.kind == "add":
            kernels.append(Kernel("add", dtype, (n_in, n_in), n_out, op="ADD"))
        elif layer.kind == "gap":
            kernels.append(Kernel("mean", dtype, (n_in,), n_out, op="MEAN"))
    kernels.append(Kernel("softmax", dtype, (num_classes,), num_classes, op="SOFTMAX"))
    return dequantize + kernels
