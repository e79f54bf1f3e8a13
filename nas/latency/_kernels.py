"""A model as the list of kernels a runtime executes, read from a .tflite flatbuffer or derived
from a spec (`_features` turns the list into what latency models are fitted on).

The two sources agree: `kernels_from_spec(spec)` lists what the converter emits for that spec
(batch norm folded, ReLU6 fused into the convolutions, float16 weights dequantized, hybrid
weights where dynamic-range quantization quantizes them), so a model fitted on measured .tflite
files predicts a spec in microseconds, before anything is built. Any .tflite made of supported
operators can be read, not only models of our search spaces.
"""

from __future__ import annotations

from functools import lru_cache
from math import prod
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from ..spec import ArchSpec, plan
from ._flatbuffer import Graph, parse_tflite

__all__ = ["Kernel", "kernels_from_tflite", "kernels_from_spec", "model_mode", "inside_taps", "HYBRID_MIN_WEIGHTS",
           "BINARY_OPS", "TFLM_BUILTINS", "family_features", "summed_features", "by_key", "RAN_AS"]

#: TFLite builtin operators -> the kernel family a latency model prices, where it is not the
#: operator's own name (lower case): every builtin is named by its code, none is lumped together.
_OPS = {
    "CONV_2D": "conv", "DEPTHWISE_CONV_2D": "dwconv", "FULLY_CONNECTED": "fc", "AVERAGE_POOL_2D": "avgpool",
    "MAX_POOL_2D": "maxpool", "RESHAPE": "reshape", "SQUEEZE": "reshape", "EXPAND_DIMS": "reshape",
    "PADV2": "pad", "CONCATENATION": "concat",
}
_FAMILY_OF: dict[str, str] = {}  # operator -> family, filled as operators are met
#: Which features each family carries (every family also counts itself: `n`).
_FAMILY_FEATURES = {
    "conv": ("n", "in", "out", "macs", "taps", "w", "vmacs", "vtaps"),
    "dwconv": ("n", "in", "out", "macs", "w", "vmacs"),
    "fc": ("n", "in", "out", "macs", "w", "px"),
    "transpose_conv": ("n", "in", "out", "macs", "w"),
    "maxpool": ("n", "in", "out", "px"),
    "avgpool": ("n", "in", "out", "px"),
    "softmax": ("n", "in", "out", "px"),
    "concat": ("n", "in", "out", "k", "runs"),
    # a batched matrix product (attention's Q.K^T and scores.V): `w` counts the elements TFLite's and
    # TFLite Micro's kernels transpose on every invocation (the left operand under adj_x, a right one
    # that is not constant unless adj_y)
    "batch_matmul": ("n", "in", "out", "macs", "w"),
    # resizes work per output pixel (a source position, or four and their weights), then per channel
    "resize_nearest_neighbor": ("n", "in", "out", "px"),
    "resize_bilinear": ("n", "in", "out", "px"),
    # a fused LSTM layer (Keras LSTM through the TFLite converter): its gates' products, per step
    "unidirectional_sequence_lstm": ("n", "out", "macs", "runs"),
}
_DEFAULT_FEATURES = ("n", "in", "out")
#: Element-wise operators of two inputs: TFLite's kernels take a slower path when the shapes differ.
BINARY_OPS = frozenset(("ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW", "FLOOR_DIV",
                        "FLOOR_MOD", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL", "LOGICAL_AND",
                        "LOGICAL_OR", "PRELU", "SELECT_V2"))
# element-wise binary kernels: a broadcast costs a call of the inner loop per run (0 where the shapes are the same)
_FAMILY_FEATURES.update({op.lower(): ("n", "in", "out", "runs") for op in BINARY_OPS})
#: Operators TFLite Micro registers (tflite-micro's kernel registry, as its Python interpreter
#: 0.dev ships it; the signal-processing custom kernels left out): anything else it cannot run.
TFLM_BUILTINS = frozenset("""
    ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND BROADCAST_ARGS
    BROADCAST_TO CALL_ONCE CAST CEIL CIRCULAR_BUFFER CONCATENATION CONV_2D COS CUMSUM DEPTHWISE_CONV_2D DEPTH_TO_SPACE
    DEQUANTIZE DETECTION_POSTPROCESS DIV ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD
    FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS
    LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD
    MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_ALL REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE
    RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND
    SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE
    TRANSPOSE_CONV UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split())
#: Dynamic-range quantization leaves weight tensors smaller than this in float (TFLite's rule).
HYBRID_MIN_WEIGHTS = 1024


class Kernel(NamedTuple):
    """One operator as the runtime executes it (a named tuple: a model has one per operator, read per prediction)."""

    family: str  # conv, dwconv, fc, avgpool, maxpool, reshape, pad, concat, or the operator's own name in lower case
    dtype: str  # activation type: float32, int8, int16; "hybrid" for float activations with int8 weights
    inputs: tuple[int, ...]  # elements of each activation input (constants excluded)
    out: int  # output elements
    macs: int = 0
    taps: int = 0  # output elements x filter positions (per-tap overhead of reference convolutions)
    weights: int = 0  # weight elements
    op: str = ""  # the TFLite builtin name
    vmacs: int = 0  # MACs over filter positions inside the input (reference kernels skip padding)
    vtaps: int = 0  # filter positions inside the input, over all output elements
    channels: int = 0  # output channels (conv, dwconv), units (fc), channels per row (pools, softmax, MEAN's input)
    window: int = 0  # filter positions, kh * kw (1 for fc)
    stride: int = 1
    variant: str = ""  # what changes the kernel's code path: "float32-int8" (QUANTIZE in -> out), "broadcast", "gated", ...
    runs: int = 0  # calls of the inner loop: a broadcast's runs (output / innermost run), a concatenation's copies
    edge: bool = False  # a reshape that reads a graph input or writes a graph output (XNNPACK elides the others)
    symmetric: bool = False  # a BATCH_MATMUL whose right operand's zero point is 0 (XNNPACK takes such an int8 one)

    @property
    def key(self) -> str:
        """The name its coefficients go under: family, then hybrid weights and the variant."""
        return _key_of(self.family, self.dtype, self.variant)

    def features(self) -> dict[str, float]:
        return summed_features({self.key: [self]})


def _key_of(family: str, dtype: str, variant: str) -> str:
    return family + ("/hybrid" if dtype == "hybrid" else "") + (f"/{variant}" if variant else "")


_GROUP = attrgetter("family", "dtype", "variant")  # what a kernel's key is made of
RAN_AS = attrgetter("op", "dtype")  # a kernel's operator and activation type


def by_key(kernels) -> dict[str, list[Kernel]]:
    """`kernels` under their coefficient keys (`Kernel.key`), the keys in the order they first
    appear: each key's string is made once, not once per kernel (a file's kernels are grouped on
    every prediction)."""
    kernels = kernels if isinstance(kernels, (list, tuple)) else list(kernels)  # read twice below
    groups: dict[tuple[str, str, str], list[Kernel]] = {}
    for group, kernel in zip(map(_GROUP, kernels), kernels):
        members = groups.get(group)
        if members is None:
            groups[group] = [kernel]
        else:
            members.append(kernel)
    out: dict[str, list[Kernel]] = {}
    for group, members in groups.items():
        key = _key_of(*group)
        if key in out:
            out[key] = out[key] + members
        else:
            out[key] = members
    return out


def summed_features(kernels) -> dict[str, float]:
    """The sum of `Kernel.features` over `kernels` (the same entries, in the same order): what
    prices a model read from a file on every prediction. `kernels` may be given grouped by key
    (`by_key`); each feature is then summed over a key's kernels at once."""
    row: dict[str, float] = {}
    for key, members in (kernels if isinstance(kernels, dict) else by_key(kernels)).items():
        for full, name in _feature_names(key, members[0].family):
            row[full] = float(_SUMS[name](members))
    return row


def _summed(field: str):
    """The sum of one field of the kernels given (in C: a few hundred kernels per file)."""
    read = attrgetter(field)
    return lambda kernels: sum(map(read, kernels))


_INPUTS = attrgetter("inputs")
#: Each feature, summed over the kernels of one key.
_SUMS = {
    "n": len,
    "in": lambda kernels: sum(map(sum, map(_INPUTS, kernels))),  # activation input elements
    "out": _summed("out"),
    "px": lambda kernels: sum([k.out // k.channels for k in kernels if k.channels]),  # output rows (pixels)
    "k": lambda kernels: sum(map(len, map(_INPUTS, kernels))),  # activation inputs
    "macs": _summed("macs"), "taps": _summed("taps"), "w": _summed("weights"), "vmacs": _summed("vmacs"),
    "vtaps": _summed("vtaps"), "runs": _summed("runs"),
}


@lru_cache(maxsize=4096)
def _feature_names(key: str, family: str) -> tuple[tuple[str, str], ...]:
    """(coefficient name, feature) of each feature a kernel of this key and family carries."""
    return tuple((f"{key}:{name}", name) for name in _FAMILY_FEATURES.get(family, _DEFAULT_FEATURES))


@lru_cache(maxsize=65536)
def inside_taps(size: int, out: int, kernel: int, stride: int, same: bool, dilation: int = 1) -> int:
    """Filter positions that fall inside the input along one axis, summed over the outputs."""
    span = (kernel - 1) * dilation + 1
    pad = max((out - 1) * stride + span - size, 0) // 2 if same else 0
    total = 0
    for o in range(out):
        start = o * stride - pad
        if dilation == 1:
            total += max(0, min(start + kernel, size) - max(start, 0))
        else:
            total += sum(1 for t in range(kernel) if 0 <= start + t * dilation < size)
    return total


def kernels_from_tflite(source: str | Path | bytes | Graph) -> list[Kernel]:
    """The kernels of a .tflite model's main subgraph (bytes, a path or its parsed `Graph`), in execution order."""
    graph = source if isinstance(source, Graph) else parse_tflite(source)
    shapes, dtypes, constant, elements = graph.shapes, graph.dtypes, graph.constant, graph.elements
    kernels = []
    families = _FAMILY_OF
    gated_from: dict[int, int] = {}  # output of a gate (`_GATES`) -> the tensor it was computed from
    graph_inputs, graph_outputs = frozenset(graph.inputs), frozenset(graph.outputs)
    new = tuple.__new__  # a Kernel without its generated __new__'s Python call (a few hundred per file)
    for op in graph.operators:
        name, tensors, outputs = op[0], op[1], op[2]  # name, inputs, outputs (indexing a tuple is the cheaper read)
        activations = [j for j in tensors if not constant[j]]
        out = elements[outputs[0]] if len(outputs) == 1 else sum(elements[j] for j in outputs)
        family = families.get(name) or families.setdefault(name, _OPS.get(name, name.lower()))
        first = activations[0] if activations else (tensors[0] if tensors else None)
        dtype = dtypes[first] if first is not None else "float32"
        macs = taps = weights = vmacs = vtaps = channels = window = runs = 0
        stride = 1
        variant = ""
        if name in ("QUANTIZE", "DEQUANTIZE") and outputs and first is not None:
            variant = f"{dtype}-{dtypes[outputs[0]]}"
        elif name in BINARY_OPS and len(tensors) >= 2 and (shapes[tensors[0]] != shapes[tensors[1]] if len(tensors) == 2
                                                           else len({shapes[j] for j in tensors}) > 1):
            variant = "broadcast"
            runs = out // _broadcast_run(shapes[tensors[0]], shapes[tensors[1]], out)
        elif name == "MUL" and len(activations) == 2 and (gated_from.get(activations[1]) == activations[0]
                                                          or gated_from.get(activations[0]) == activations[1]):
            variant = "gated"
        elif name == "MEAN" and activations and outputs:
            source = shapes[activations[0]]  # the global average pool of (1, H, W, C) is a kernel of its own
            if not (len(source) == 4 and source[-1] == out and elements[activations[0]] == source[1] * source[2] * out):
                variant = "partial"
            channels = source[-1] if source else 0  # == out: every axis but the channels reduced (`xnnpack_features`)
            result = shapes[outputs[0]]
            # the innermost axis alone reduced (a layer norm's): XNNPACK's contiguous reduction. Read off the
            # shapes: without keepdims, (T, C) -> (T,) is told from a reduction over T only where T != C
            if len(source) > 1 and (result == (*source[:-1], 1) or (result == source[:-1] and source[-1] != source[-2])):
                window = channels
        elif name == "CONCATENATION" and outputs:
            result = shapes[outputs[0]]
            axis = op.axis + len(result) if op.axis < 0 else op.axis
            runs = prod(d if d > 1 else 1 for d in result[:axis]) * len(tensors)  # a copy per outer position and input
        if family == "transpose_conv" and len(tensors) >= 3:  # inputs: output shape, filter (out_c, kh, kw, in_c), input
            filt, source_tensor = tensors[1], tensors[2]
            shape = shapes[filt]
            weights = elements[filt]
            channels = shape[0]
            window = shape[1] * shape[2]
            macs = elements[source_tensor] * window * shape[0]  # every input element scatters into kh x kw x out_c outputs
            activations = [source_tensor]
            dtype = dtypes[source_tensor]
            stride = max(max(op.stride), 1)
        elif family in ("conv", "dwconv", "fc") and len(tensors) >= 2:
            filt = tensors[1]
            shape = shapes[filt]
            weights = elements[filt]
            result = shapes[outputs[0]] if outputs else ()
            channels = result[-1] if result else 0
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
            if family != "fc" and activations:
                vtaps, stride = _inside(op, shapes[activations[0]], result, shape)
                vmacs = vtaps * (shape[3] if family == "conv" else 1)
            if dtype == "float32" and dtypes[filt] == "int8":
                dtype = "hybrid"
        elif family == "batch_matmul" and len(tensors) >= 2 and shapes[tensors[0]]:
            lhs, rhs = tensors[0], tensors[1]
            shape = shapes[lhs]
            macs = out * (shape[-2] if op.adjoint[0] and len(shape) > 1 else shape[-1])  # out x the inner dimension
            # operands transposed on every invoke: the left one under adj_x, a right one that is not
            # constant unless adj_y (a constant one is transposed once, when the kernel prepares)
            weights = (elements[lhs] if op.adjoint[0] else 0) + (0 if op.adjoint[1] or constant[rhs] else elements[rhs])
            result = shapes[outputs[0]]
            channels = result[-1] if result else 0  # N; `runs`: the products in the batch (XNNPACK's GEMM tiles)
            runs = prod(result[:-2]) if len(result) > 2 else 1
        elif family in _PER_ROW and outputs and shapes[outputs[0]]:
            channels = shapes[outputs[0]][-1]  # pooling and resizes run per output pixel, softmax and XNNPACK's pad per row
        elif family == "dequantize" and not activations:
            activations = [j for j in tensors if constant[j]]  # float16 weights, dequantized at run time
        elif family == "unidirectional_sequence_lstm" and activations and shapes[activations[0]]:
            # a fused LSTM layer: every step multiplies its input and its state by each 2-D weight (the gates'
            # input and recurrent weights, a projection); `runs`: steps x batch, whichever axis is time
            runs = elements[activations[0]] // max(shapes[activations[0]][-1], 1)
            matrices = [j for j in tensors if constant[j] and len(shapes[j]) == 2]
            weights = sum([elements[j] for j in matrices])
            macs = runs * weights
            if dtype == "float32" and matrices and dtypes[matrices[0]] == "int8":
                dtype = "hybrid"  # dynamic-range: int8 weights, float activations (a kernel path of its own)
        edge = family == "reshape" and (any(j in graph_inputs for j in tensors) or any(j in graph_outputs for j in outputs))
        kernels.append(new(Kernel, (family, dtype, tuple([elements[j] for j in activations]), out, macs, taps, weights, name,
                                    vmacs, vtaps, channels, window, stride, variant, runs, edge, op.rhs_zero)))
        if name in _GATES and tensors:
            for j in outputs:
                gated_from[j] = tensors[0]
    return kernels


#: Families whose cost runs per output row (pixel): `channels` holds the row's length.
_PER_ROW = frozenset(("maxpool", "avgpool", "softmax", "pad", "resize_nearest_neighbor", "resize_bilinear"))
#: Unary operators whose output, multiplied by their own input, makes a gate: x * sigmoid(x) (swish,
#: SiLU) or x * tanh(...). In int8, XNNPACK folds such a product into the lookup table of the unary
#: operator (callgrind: no multiply runs), so the MUL is a variant of its own (`mul/gated`).
_GATES = frozenset(("LOGISTIC", "TANH"))


def _broadcast_run(a: tuple[int, ...], b: tuple[int, ...], out: int) -> int:
    """Elements of the innermost run a broadcast element-wise kernel loops over in one call: the
    trailing dimensions the two shapes treat alike (equal, or one of them 1 throughout), the
    whole output when one operand is a scalar. XNNPACK calls its micro-kernel once a run, so a
    (H, W, C) x (1, 1, C) multiply costs a call per pixel (`runs` = out / run)."""
    size_a, size_b = prod(a), prod(b)
    if size_a <= 1 or size_b <= 1:
        return max(out, 1)
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    run, kind = 1, None
    for x, y in zip(reversed(a), reversed(b)):
        this = "same" if x == y else "a1" if x == 1 else "b1" if y == 1 else "other"
        if kind is None:
            kind = this
        if this != kind or this == "other":
            break
        run *= max(x, y)
    return max(run, 1)


def _inside(op, source: tuple[int, ...], result: tuple[int, ...], filt: tuple[int, ...]) -> tuple[int, int]:
    """vtaps of a convolution (in-image filter positions x output channels) and its stride
    (the larger of the two; XNNPACK only asks whether it is 1), from its options."""
    _, h, w, _ = source
    _, oh, ow, oc = result
    (sh, sw), (dh, dw) = op.stride, op.dilation
    vtaps = (inside_taps(h, oh, filt[1], sh, op.padding_same, max(dh, 1))
             * inside_taps(w, ow, filt[2], sw, op.padding_same, max(dw, 1)) * oc)
    return vtaps, max(sh, sw)


def model_mode(source: str | Path | bytes | Graph | list[Kernel]) -> str:
    """The quantization mode a .tflite model (or its kernel list) was converted in, from its tensor types:
    one of the search's modes (`QUANT_MODES`), or "uint8" for a model quantized to uint8 throughout."""
    kernels = source if isinstance(source, list) else kernels_from_tflite(source)
    ran = set(map(RAN_AS, kernels))
    dtypes = {dtype for _, dtype in ran}
    if "uint8" in dtypes and any(dtype == "uint8" and op not in ("QUANTIZE", "DEQUANTIZE") for op, dtype in ran):
        return "uint8"  # quantized to uint8 throughout (TensorFlow 1's quantization), not only at its inputs
    if ("DEQUANTIZE", "float16") in ran:
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
    """The kernels the converter emits for `spec` in its quantization mode (no TensorFlow needed);
    ConfigError for fewer than 1 input channel or 2 classes (`nas.spec.plan` refuses them)."""
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
                dequantize += [Kernel("dequantize", "float16", (weights,), weights, op="DEQUANTIZE", variant="float16-float32"),
                               Kernel("dequantize", "float16", (bias,), bias, op="DEQUANTIZE", variant="float16-float32")]
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
    kernels.append(Kernel("softmax", dtype, (num_classes,), num_classes, op="SOFTMAX", channels=num_classes))
    return dequantize + kernels


def family_features(family: str) -> tuple[str, ...]:
    """The features a kernel family is priced by (`Kernel.features`: family:feature)."""
    return _FAMILY_FEATURES.get(family, _DEFAULT_FEATURES)
