"""A model as the list of kernels a runtime executes, read from a .tflite flatbuffer or derived
from a spec, and the features latency and memory models are fitted on.

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

from .errors import ConfigError
from .plan import plan
from .spec import ArchSpec

__all__ = ["Kernel", "read_tflite", "kernels_from_tflite", "kernels_from_spec", "model_mode", "features", "arena_estimate_bytes"]

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
}
_DEFAULT_FEATURES = ("n", "in", "out")
#: Dynamic-range quantization leaves weight tensors smaller than this in float (TFLite's rule).
HYBRID_MIN_WEIGHTS = 1024

_DTYPE_BYTES = {"float32": 4, "float16": 2, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "bool": 1}


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

    def features(self) -> dict[str, float]:
        values = {"n": 1, "in": sum(self.inputs), "out": self.out, "macs": self.macs, "taps": self.taps, "w": self.weights,
                  "vmacs": self.vmacs, "vtaps": self.vtaps}
        key = self.family + ("/hybrid" if self.dtype == "hybrid" else "")
        return {f"{key}:{name}": float(values[name]) for name in _FAMILY_FEATURES.get(self.family, _DEFAULT_FEATURES)}


def features(kernels: list[Kernel]) -> dict[str, float]:
    """Summed kernel features of one model, plus the graph-wide ones."""
    total: dict[str, float] = {"graph:n": 1.0, "graph:ops": float(len(kernels))}
    for kernel in kernels:
        for name, value in kernel.features().items():
            total[name] = total.get(name, 0.0) + value
    return total


@lru_cache(maxsize=65536)
def inside_taps(size: int, out: int, kernel: int, stride: int, same: bool) -> int:
    """Filter positions that fall inside the input along one axis, summed over the outputs."""
    pad = max((out - 1) * stride + kernel - size, 0) // 2 if same else 0
    total = 0
    for o in range(out):
        start = o * stride - pad
        total += max(0, min(start + kernel, size) - max(start, 0))
    return total


# ---------------------------------------------------------------- .tflite flatbuffers

def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _enum_names(enum) -> dict[int, str]:
    return {value: name for name, value in vars(enum).items() if not name.startswith("_")}


def read_tflite(source: str | Path | bytes) -> bytes:
    """The bytes of a .tflite model given as bytes or a path (a clear error when the file is missing)."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return path.read_bytes()


def _parse(data: bytes, where: str):
    schema = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConfigError(f"{where}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise ConfigError(f"{where}: the model has no subgraph")
        return schema, model
    except ConfigError:
        raise
    except Exception as exc:  # a corrupt flatbuffer raises whatever the decoder hits
        raise ConfigError(f"{where}: cannot read the flatbuffer ({type(exc).__name__})") from None


def _constant_tensors(model, graph, op_names: dict[int, str]) -> set[int]:
    """Indices of tensors that hold weights: those with data in the flatbuffer, and the outputs of
    DEQUANTIZE operators that read them (float16 weights, expanded at run time)."""
    constant = set()
    for j in range(graph.TensorsLength()):
        buffer = model.Buffers(graph.Tensors(j).Buffer())
        if buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0):
            constant.add(j)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        if op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode())) == "DEQUANTIZE" and op.InputsLength():
            if all(int(j) in constant for j in op.InputsAsNumpy() if j >= 0):
                constant.update(int(j) for j in op.OutputsAsNumpy())
    return constant


def kernels_from_tflite(source: str | Path | bytes) -> list[Kernel]:
    """The kernels of a .tflite model's main subgraph, in execution order."""
    where = "model" if isinstance(source, (bytes, bytearray)) else str(source)
    schema, model = _parse(read_tflite(source), where)
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}
    graph = model.Subgraphs(0)
    constant = _constant_tensors(model, graph, op_names)

    def elements(tensor) -> int:
        shape = tensor.ShapeAsNumpy() if tensor.ShapeLength() else []
        size = 1
        for dim in shape:
            size *= max(int(dim), 1)  # a dynamic batch (-1) runs one sample
        return size

    kernels = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        inputs = [int(j) for j in op.InputsAsNumpy() if j >= 0] if op.InputsLength() else []
        tensors = [graph.Tensors(j) for j in inputs]
        outputs = [graph.Tensors(int(j)) for j in op.OutputsAsNumpy()] if op.OutputsLength() else []
        activations = [graph.Tensors(j) for j in inputs if j not in constant]
        constants = [graph.Tensors(j) for j in inputs if j in constant]
        out = sum(elements(t) for t in outputs)
        family = _OPS.get(name, "other")
        first = activations[0] if activations else (tensors[0] if tensors else None)
        dtype = type_names.get(first.Type(), "float32") if first is not None else "float32"
        macs = taps = weights = vmacs = vtaps = 0
        if family in ("conv", "dwconv", "fc") and len(tensors) >= 2:
            filt = tensors[1]
            shape = [int(d) for d in filt.ShapeAsNumpy()]
            weights = elements(filt)
            if family == "conv":  # filter (out_c, kh, kw, in_c)
                taps = out * shape[1] * shape[2]
                macs = taps * shape[3]
            elif family == "dwconv":  # filter (1, kh, kw, out_c)
                taps = macs = out * shape[1] * shape[2]
            else:  # filter (units, in_features)
                macs = out * shape[-1]
            if family in ("conv", "dwconv") and activations:
                vtaps = _inside(schema, op, family, activations[0], outputs[0], shape)
                vmacs = vtaps * (shape[3] if family == "conv" else 1)
            if dtype == "float32" and type_names.get(filt.Type()) == "int8":
                dtype = "hybrid"
        if family == "dequantize" and not activations:
            activations = constants  # float16 weights, dequantized at run time
        kernels.append(Kernel(family, dtype, tuple(elements(t) for t in activations), out, macs, taps, weights, name,
                              vmacs, vtaps))
    return kernels


def _inside(schema, op, family: str, source, result, filt: list[int]) -> int:
    """vtaps of a convolution: in-image filter positions x output channels, from its options."""
    options_type = schema.Conv2DOptions if family == "conv" else schema.DepthwiseConv2DOptions
    table = op.BuiltinOptions()
    options = options_type()
    options.Init(table.Bytes, table.Pos)
    same = options.Padding() == schema.Padding.SAME
    _, h, w, _ = (int(d) for d in source.ShapeAsNumpy())
    _, oh, ow, oc = (int(d) for d in result.ShapeAsNumpy())
    return (inside_taps(h, oh, filt[1], options.StrideH(), same) * inside_taps(w, ow, filt[2], options.StrideW(), same) * oc)


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
            kernels.append(Kernel(family, kernel_dtype, (n_in,), n_out, macs, taps, weights, op, vmacs, vtaps))
        elif layer.kind == "add":
            kernels.append(Kernel("add", dtype, (n_in, n_in), n_out, op="ADD"))
        elif layer.kind == "gap":
            kernels.append(Kernel("mean", dtype, (n_in,), n_out, op="MEAN"))
    kernels.append(Kernel("softmax", dtype, (num_classes,), num_classes, op="SOFTMAX"))
    return dequantize + kernels


# ---------------------------------------------------------------- memory

def arena_estimate_bytes(source: str | Path | bytes) -> int:
    """Peak bytes of live activation tensors over a .tflite model's execution order.

    A tensor is live from the operator that writes it (or the start, for graph inputs) to the
    last operator that reads it (or the end, for graph outputs). Constants live in flash and are
    not counted. This is the floor any arena planner reaches; TFLite Micro adds alignment and
    per-operator scratch on top, which `nas calibrate` fits for a TFLM device.
    """
    where = "model" if isinstance(source, (bytes, bytearray)) else str(source)
    schema, model = _parse(read_tflite(source), where)
    type_names = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}
    graph = model.Subgraphs(0)
    constant = _constant_tensors(model, graph, _enum_names(schema.BuiltinOperator))
    n_ops = graph.OperatorsLength()
    first: dict[int, int] = {int(i): -1 for i in graph.InputsAsNumpy()} if graph.InputsLength() else {}
    last: dict[int, int] = {int(i): n_ops for i in graph.OutputsAsNumpy()} if graph.OutputsLength() else {}

    def variable(index: int) -> bool:
        return index not in constant

    for step in range(n_ops):
        op = graph.Operators(step)
        for j in (op.InputsAsNumpy() if op.InputsLength() else []):
            if j >= 0 and variable(int(j)):
                last[int(j)] = max(last.get(int(j), step), step)
        for j in (op.OutputsAsNumpy() if op.OutputsLength() else []):
            if not variable(int(j)):
                continue
            first.setdefault(int(j), step)
            last.setdefault(int(j), step)

    def nbytes(index: int) -> int:
        tensor = graph.Tensors(index)
        size = _DTYPE_BYTES.get(type_names.get(tensor.Type(), "float32"), 4)
        for dim in (tensor.ShapeAsNumpy() if tensor.ShapeLength() else []):
            size *= max(int(dim), 1)
        return size

    sizes = {i: nbytes(i) for i in first}
    return max((sum(sizes[i] for i in first if first[i] <= step <= last.get(i, step)) for step in range(n_ops)), default=0)
