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

__all__ = ["Kernel", "read_tflite", "kernels_from_tflite", "kernels_from_spec", "model_mode", "features", "feature_set", "xnnpack_features"]

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
    channels: int = 0  # output channels (conv, dwconv) or units (fc)
    window: int = 0  # filter positions, kh * kw (1 for fc)
    stride: int = 1

    def features(self) -> dict[str, float]:
        values = {"n": 1, "in": sum(self.inputs), "out": self.out, "macs": self.macs, "taps": self.taps, "w": self.weights,
                  "vmacs": self.vmacs, "vtaps": self.vtaps, "px": self.out // self.channels if self.channels else 0}
        key = self.family + ("/hybrid" if self.dtype == "hybrid" else "")
        return {f"{key}:{name}": float(values[name]) for name in _FAMILY_FEATURES.get(self.family, _DEFAULT_FEATURES)}


def features(kernels: list[Kernel], feature_set: str = "kernel") -> dict[str, float]:
    """Summed kernel features of one model, plus the graph-wide ones.

    With `feature_set="xnnpack"` the convolutions and fully connected layers that XNNPACK runs
    are described by the micro-kernel tiles it executes (`xnnpack_features`) instead of by their
    shapes: its cost per MAC varies 20-fold with how the shapes fall into those tiles."""
    xnnpack = feature_set == "xnnpack"
    total: dict[str, float] = {"graph:n": 1.0, "graph:ops": float(len(kernels)),
                               "graph:macs": float(sum(k.macs for k in kernels))}  # for the MACs-linear floor only
    for kernel in kernels:
        values = (xnnpack_features(kernel) if xnnpack else None) or kernel.features()
        for name, value in values.items():
            total[name] = total.get(name, 0.0) + value
    return total


def feature_set(runtime: str, measure: str) -> str:
    """Which features price a device's kernels: XNNPACK's tiles for LiteRT counted under valgrind,
    whose virtual CPU (AVX2/FMA3) fixes the micro-kernels `xnnpack_features` describes; kernel
    shapes otherwise (TFLite Micro; LiteRT timed natively, where XNNPACK picks the host's own,
    e.g. AVX-512, micro-kernels)."""
    return "xnnpack" if runtime == "litert" and measure == "icount" else "kernel"


#: XNNPACK's micro-kernels as LiteRT 2.x picks them on x86-64 with AVX2/FMA3 (what valgrind
#: presents), read from callgrind profiles of single-operator models:
#: (data path, kind) -> rule giving (mr, nr, kr) from the output channels.
_XNN_GEMM = {
    ("f32", "gemm"): lambda n: (6, 16, 1) if n % 16 == 0 else (10, 8, 1),
    ("f32", "igemm"): lambda n: (10, 8, 1) if n <= 8 else (5, 16, 1),
    ("f32", "fc"): lambda n: (1, 16, 1) if n % 16 == 0 else (1, 8, 1),
    ("qs8", "gemm"): lambda n: (3, 8, 8), ("qs8", "igemm"): lambda n: (3, 8, 8), ("qs8", "fc"): lambda n: (1, 8, 8),
    ("qd8", "gemm"): lambda n: (4, 8, 8), ("qd8", "igemm"): lambda n: (4, 8, 8), ("qd8", "fc"): lambda n: (1, 8, 8),
}
#: Depthwise micro-kernels hold this many filter taps (16 channels a pass); larger filters run as
#: a grouped igemm, one output channel a group.
_XNN_DW_TAPS = (3, 9, 25)
_XNN_PATH = {"float32": "f32", "int8": "qs8", "hybrid": "qd8"}


def xnnpack_features(kernel: Kernel) -> dict[str, float] | None:
    """Tile counts of the XNNPACK micro-kernel that runs `kernel`, or None when XNNPACK does not
    run it (int16 activations, hybrid depthwise: TFLite's own kernels) or it is not a convolution.

    A GEMM micro-kernel call computes mr output pixels x nr channels over K in steps of kr:
    `rows` counts row tiles (one call each), `blocks` row x column tiles, `steps` their inner
    iterations; an indirect GEMM (igemm, any convolution but 1x1 stride 1) loops over filter taps
    too (`taps`). A depthwise micro-kernel runs per output pixel, 16 channels a pass."""
    path = _XNN_PATH.get(kernel.dtype)
    if path is None or kernel.family not in ("conv", "dwconv", "fc") or not kernel.channels:
        return None
    channels, window = kernel.channels, max(kernel.window, 1)
    pixels = max(kernel.out // channels, 1)
    if kernel.family == "dwconv":
        if path == "qd8":
            return None
        tile = next((t for t in _XNN_DW_TAPS if window <= t), None)
        if tile is not None:
            name = f"xnn-{path}-dw{tile}p16c"
            return {f"{name}:px": pixels, f"{name}:pxc": pixels * -(-channels // 16), "dwconv:n": 1.0}
        groups, n, k_in, kind = channels, 1, 1, "igemm"
    elif kernel.family == "fc":
        groups, n, k_in, kind = 1, channels, kernel.weights // channels, "fc"
    else:
        groups, n, k_in = 1, channels, kernel.macs // max(kernel.taps, 1)
        kind = "gemm" if window == 1 and kernel.stride == 1 else "igemm"
    mr, nr, kr = _XNN_GEMM[(path, kind)](n)
    name = f"xnn-{path}-{kind}{mr}x{nr}" + (f"c{kr}" if kr > 1 else "")
    rows = groups * -(-pixels // mr)
    blocks = rows * -(-n // nr)
    out = {f"{name}:rows": rows, f"{name}:blocks": blocks, f"{kernel.family}:n": 1.0}
    if kind == "igemm":
        out[f"{name}:steps"] = blocks * window * -(-k_in // kr)
        out[f"{name}:taps"] = blocks * window
    else:
        out[f"{name}:steps"] = blocks * -(-k_in // kr)
    if path == "qd8":  # activations are quantized on the fly before the integer GEMM
        out["xnn-qd8-convert:in"] = float(sum(kernel.inputs))
    return out


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


def _open(source: str | Path | bytes):
    """(schema, model, main subgraph) of a .tflite given as bytes or a path; a clear error if it is none."""
    where = "model" if isinstance(source, (bytes, bytearray)) else str(source)
    data = read_tflite(source)
    schema = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConfigError(f"{where}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise ConfigError(f"{where}: the model has no subgraph")
        return schema, model, model.Subgraphs(0)
    except ConfigError:
        raise
    except Exception as exc:  # a corrupt flatbuffer raises whatever the decoder hits
        raise ConfigError(f"{where}: cannot read the flatbuffer ({type(exc).__name__})") from None


def _op_name(model, op, op_names: dict[int, str]) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    return op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")


def _elements(tensor) -> int:
    size = 1
    for dim in (tensor.ShapeAsNumpy() if tensor.ShapeLength() else []):
        size *= max(int(dim), 1)  # a dynamic batch (-1) runs one sample
    return size


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
        if _op_name(model, op, op_names) == "DEQUANTIZE" and op.InputsLength():
            if all(int(j) in constant for j in op.InputsAsNumpy() if j >= 0):
                constant.update(int(j) for j in op.OutputsAsNumpy())
    return constant


def kernels_from_tflite(source: str | Path | bytes) -> list[Kernel]:
    """The kernels of a .tflite model's main subgraph, in execution order."""
    schema, model, graph = _open(source)
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}
    constant = _constant_tensors(model, graph, op_names)
    kernels = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name = _op_name(model, op, op_names)
        inputs = [int(j) for j in op.InputsAsNumpy() if j >= 0] if op.InputsLength() else []
        tensors = [graph.Tensors(j) for j in inputs]
        outputs = [graph.Tensors(int(j)) for j in op.OutputsAsNumpy()] if op.OutputsLength() else []
        activations = [graph.Tensors(j) for j in inputs if j not in constant]
        constants = [graph.Tensors(j) for j in inputs if j in constant]
        out = sum(_elements(t) for t in outputs)
        family = _OPS.get(name, "other")
        first = activations[0] if activations else (tensors[0] if tensors else None)
        dtype = type_names.get(first.Type(), "float32") if first is not None else "float32"
        macs = taps = weights = vmacs = vtaps = channels = window = 0
        stride = 1
        if family in ("conv", "dwconv", "fc") and len(tensors) >= 2:
            filt = tensors[1]
            shape = [int(d) for d in filt.ShapeAsNumpy()]
            weights = _elements(filt)
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
        kernels.append(Kernel(family, dtype, tuple(_elements(t) for t in activations), out, macs, taps, weights, name,
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
