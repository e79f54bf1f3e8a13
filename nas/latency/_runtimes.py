"""What a runtime cannot run, read from the file alone: operators it has no kernel for, activation
types a registered kernel has no code for, and the checks kernels make while they prepare that
fail the allocation or abort the process. A device refuses such a model by name rather than price
a model that never runs.

Each rule was seen failing in the runtime itself (ai-edge-litert 2.3.0, tflite-micro 0.dev20261023,
2026-12-04), on generated models and on held-out real files. `tests/test_runtimes.py` builds a
model that breaks each rule and runs it in the runtime (BATCH_TO_SPACE_ND comes with
SPACE_TO_BATCH_ND there; RESIZE_BILINEAR and TRANSPOSE are in `tests/test_any_tflite.py`).
"""

from __future__ import annotations

from itertools import chain

from ._flatbuffer import Graph
from ._kernels import RAN_AS, TFLM_BUILTINS

__all__ = ["cannot_run", "rescales", "TFLM_NO_KERNEL_FOR", "LITERT_NO_KERNEL_FOR", "TFLM_TRANSPOSE_MAX_RANK"]

#: (operator, activation type) that TFLite Micro registers but cannot run: the kernel refuses the
#: type while it prepares ("failed to prepare": EXP, GATHER) or invokes ("Type INT16 (7) not
#: supported", "Only float32 and int8 types are supported", or no message: the rest).
TFLM_NO_KERNEL_FOR = frozenset({
    ("RESIZE_BILINEAR", "int16"), ("SPACE_TO_BATCH_ND", "int16"), ("BATCH_TO_SPACE_ND", "int16"),
    ("REDUCE_MAX", "int16"), ("REDUCE_MIN", "int16"), ("MIRROR_PAD", "int16"), ("GATHER", "int16"),
    ("EXP", "int16"), ("EXP", "int8"), ("LOG", "int16"), ("LOG", "int8"), ("SQRT", "int8"),
})
#: The same for LiteRT's builtin kernels ("SquaredDifference only supports FLOAT32 and INT32 now,
#: got 7": int16x8 layer norms with a small epsilon).
LITERT_NO_KERNEL_FOR = frozenset({("SQUARED_DIFFERENCE", "int16")})
#: The most dimensions TFLite Micro's TRANSPOSE takes ("Transpose op only supports 1D-5D input
#: arrays", transpose_common.cc: a MobileViT-style 6-D unfold fails to allocate).
TFLM_TRANSPOSE_MAX_RANK = 5
_NAMES = {"tflm": "TFLite Micro", "litert": "LiteRT"}
_QUANTIZED = frozenset(("int8", "uint8", "int16"))
_ADD_SUB = frozenset(("ADD", "SUB"))
#: The largest multiplier QuantizeMultiplierSmallerThanOneExp takes: at 1 - 2**-32 and above its
#: 31-bit fixed-point mantissa rounds up to 1.0 and its exponent check fails.
_BELOW_ONE = 1.0 - 2.0 ** -32


def cannot_run(runtime: str, kernels, graph: Graph | None = None) -> str:
    """Why `runtime` ("tflm" or "litert") cannot run these kernels (of `graph`, when read from a
    file) at all, or, where it can, why the predictor cannot price them (control flow); empty when
    neither."""
    ran = set(map(RAN_AS, kernels))  # (operator, activation type), each once
    if any(op == "CUSTOM" for op, _ in ran):
        return "the model has custom operators, which a runtime runs only with their code registered: not priced"
    name = _NAMES.get(runtime, runtime)
    if runtime == "tflm":
        missing = sorted({op for op, _ in ran if op and op not in TFLM_BUILTINS})
        if missing:
            return f"TFLite Micro has no kernel for {', '.join(missing)}"
    types = TFLM_NO_KERNEL_FOR if runtime == "tflm" else LITERT_NO_KERNEL_FOR if runtime == "litert" else frozenset()
    missing = sorted({f"{op} on {dtype}" for op, dtype in ran & types})
    if missing:
        return f"{name} has no kernel for {', '.join(missing)} (it fails to run)"
    reason = _graph_checks(runtime, name, ran, graph) if graph is not None and runtime in _NAMES else ""
    return reason or _unread_subgraphs(ran)


#: Operators that run other subgraphs of the file: a loop's body as many times as its condition
#: decides, one branch of two (LiteRT also registers StableHLO's case and composite, which run
#: subgraphs). The predictor prices the main subgraph alone. CALL_ONCE is not among them: it runs its
#: subgraph in the first invoke only, and a count keeps the second.
_CONTROL_FLOW = frozenset(("WHILE", "IF", "STABLEHLO_CASE", "STABLEHLO_COMPOSITE", "STABLEHLO_WHILE"))


def _unread_subgraphs(ran: set) -> str:
    """Why the predictor cannot price a model although its runtime may run it: control flow, whose
    subgraphs it does not read (`ran`: the kernels' (operator, type) pairs). Priced with a stand-in
    for the loop operator, a Keras GRU left as a loop came out 97% (TFLite Micro) and 99.5% (LiteRT)
    under callgrind's count: its body, where the work is, was not in the price at all, so such a model
    is not priced."""
    found = sorted({op for op, _ in ran if op in _CONTROL_FLOW})
    if not found:
        return ""
    return (f"the model has control flow ({', '.join(found)}): which of its subgraphs run, and how often, is decided at "
            "run time, and the predictor reads the main subgraph alone: not priced (a Keras GRU or SimpleRNN converts "
            "to a WHILE loop unless it is unrolled: unroll=True)")


def _graph_checks(runtime: str, name: str, ran: set, graph: Graph) -> str:
    """The checks that need the tensors: ranks, types of a kernel's other operands, quantization scales."""
    ops = {op for op, _ in ran}
    dtypes = graph.dtypes
    if runtime == "tflm" and "TRANSPOSE" in ops:
        ranks = [len(graph.shapes[op.inputs[0]]) for op in graph.operators if op.name == "TRANSPOSE" and op.inputs]
        if ranks and max(ranks) > TFLM_TRANSPOSE_MAX_RANK:
            return (f"TFLite Micro's TRANSPOSE supports up to {TFLM_TRANSPOSE_MAX_RANK} dimensions; "
                    f"this model transposes a {max(ranks)}-D tensor")
    if runtime == "tflm" and ops & {"ARG_MAX", "ARG_MIN"}:
        for op in graph.operators:
            if op.name in ("ARG_MAX", "ARG_MIN") and op.outputs and dtypes[op.outputs[0]] != "int32":
                return f"TFLite Micro's {op.name} writes only int32 indices; this model asks for {dtypes[op.outputs[0]]}"
    if "PADV2" in ops:  # the converter's int16x8 PADV2 keeps a float32 pad value: both kernels refuse it
        for op in graph.operators:
            if op.name == "PADV2" and len(op.inputs) >= 3 and dtypes[op.inputs[2]] != dtypes[op.inputs[0]]:
                return (f"{name}'s PADV2 fails to prepare: its pad value is {dtypes[op.inputs[2]]}, "
                        f"its input {dtypes[op.inputs[0]]}")
    if ("ADD" in ops or "SUB" in ops) and any(dtype in _QUANTIZED for _, dtype in ran):
        return _requantizing(runtime, name, graph)
    return ""


def _requantizing(runtime: str, name: str, graph: Graph) -> str:
    """A quantized ADD or SUB whose rescaling the kernel cannot represent: while it prepares, each
    input's scale over twice the larger, and twice the larger over the output's scale times 2^20
    (2^15 for int16), go through QuantizeMultiplierSmallerThanOneExp, which aborts the process on
    one outside (0, 1). TFLite Micro checks all three for both operators; LiteRT checks all three
    for ADD and only the inputs' for SUB (it takes the output's through QuantizeMultiplier). Seen:
    a layer norm's int16 SUB whose input has scale 0, and differences of near-equal tensors, whose
    output scale is under the inputs' / 2^19 in int8 (/ 2^14 in int16). LiteRT's power-of-two int16
    path (every scale a power of two, every zero point 0), which skips the check, is not modelled."""
    if graph.quantization_at is None:  # a Graph made without its file: its scales are not known
        return ""
    dtypes = graph.dtypes
    rows = [(op[0] == "ADD", *op[1], op[2][0], dtype == "int16") for op in graph.operators
            if op[0] in _ADD_SUB and len(op[1]) == 2 and len(op[2]) == 1 and (dtype := dtypes[op[2][0]]) in _QUANTIZED]
    if not rows:
        return ""
    if len(rows) <= _FEW_ROWS:  # a few (a CNN's residual ADDs): each read and checked in Python
        scale = graph.scale
        bad = next(((add, scale(a), scale(b), scale(out)) for add, a, b, out, int16 in rows
                    if not rescales(runtime, add, scale(a), scale(b), scale(out), int16)), None)
    else:  # many (an unrolled recurrent net's gates): every scale read and checked at once
        bad = _first_unfit(runtime, rows, graph.scales)
    if bad is None:
        return ""
    add, s_a, s_b, s_out = bad
    return (f"{name}'s {'ADD' if add else 'SUB'} aborts while it prepares: a rescaling outside (0, 1) (input scales "
            f"{s_a:.3g} and {s_b:.3g}, output {s_out:.3g}; QuantizeMultiplierSmallerThanOneExp)")


#: Up to this many quantized ADD/SUB operators, their scales are read and checked one by one (numpy's
#: fixed cost per call is more than a few of them cost in Python).
_FEW_ROWS = 12


def rescales(runtime: str, add: bool, s_a: float, s_b: float, s_out: float, int16: bool) -> bool:
    """Whether `runtime`'s ADD (`add`) or SUB kernel prepares with these input and output scales
    (`_requantizing`; `_first_unfit` is the same test over arrays)."""
    twice = 2.0 * max(s_a, s_b)
    if not twice > 0.0:
        return False
    if not (0.0 < s_a / twice < _BELOW_ONE and 0.0 < s_b / twice < _BELOW_ONE):
        return False
    if not add and runtime == "litert":
        return True
    return s_out > 0.0 and 0.0 < twice / ((2.0 ** 15 if int16 else 2.0 ** 20) * s_out) < _BELOW_ONE


def _first_unfit(runtime: str, rows: list[tuple], scales):
    """`rescales` over many (add, a, b, out, int16) rows at once: (add, scales) of the first that fails, or None."""
    import numpy as np

    add, a, b, out, int16 = np.fromiter(chain.from_iterable(rows), np.int64, 5 * len(rows)).reshape(-1, 5).T
    s_a, s_b, s_out = scales[a], scales[b], scales[out]
    twice = 2.0 * np.maximum(s_a, s_b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inputs = (s_a / twice, s_b / twice)
        output = twice / (np.where(int16, 2.0 ** 15, 2.0 ** 20) * s_out)
    fits = (twice > 0.0) & (inputs[0] > 0.0) & (inputs[0] < _BELOW_ONE) & (inputs[1] > 0.0) & (inputs[1] < _BELOW_ONE)
    out_fits = (s_out > 0.0) & (output > 0.0) & (output < _BELOW_ONE)
    fits &= out_fits | ((add == 0) if runtime == "litert" else False)
    if fits.all():
        return None
    k = int(np.argmin(fits))
    return bool(add[k]), float(s_a[k]), float(s_b[k]), float(s_out[k])
