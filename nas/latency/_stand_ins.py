"""Operators outside a latency model's calibration: each is priced by the nearest calibrated kernel
doing the same kind of work (`stand_in`), named in the prediction with its share, and the stated
error widened by that share (`_widening`); `_priced_row` prices a file's kernels that way."""

from __future__ import annotations

from functools import lru_cache

from ._features import cmsisnn_kernels, features, kernel_features
from ._kernels import _OPS, BINARY_OPS, Kernel, by_key

__all__ = ["stand_in", "stand_in_key", "with_stand_ins", "ESTIMATE_SPREAD"]

_TRANSCENDENTAL = frozenset("EXP LOG SIN COS ELU GELU SQRT RSQRT SOFTMAX LOG_SOFTMAX L2_NORMALIZATION LOGISTIC TANH".split())
_UNARY = frozenset("""ABS NEG SQUARE FLOOR CEIL ROUND CAST SIGN LOGICAL_NOT RELU_N1_TO_1 RELU_0_TO_1 ZEROS_LIKE RELU RELU6
    LEAKY_RELU HARD_SWISH PRELU""".split())
_REDUCTIONS = frozenset("SUM REDUCE_MAX REDUCE_MIN REDUCE_PROD REDUCE_ANY REDUCE_ALL ARG_MAX ARG_MIN CUMSUM MEAN".split())
#: Nearest calibrated families, best first, by the kind of work an operator does (anything else moves data).
_NEAREST = {
    "transcendental": ("tanh", "logistic", "softmax"), "unary": ("leaky_relu", "relu", "relu6", "hard_swish"),
    "binary": ("mul", "add", "sub", "maximum", "minimum"), "reduction": ("mean",),
    "move": ("strided_slice", "transpose", "concat", "pad", "reshape"), "pool": ("avgpool", "maxpool"),
    "resize": ("resize_nearest_neighbor",), "matmul": ("fc",), "conv": ("conv",),
}


def _kind(kernel: Kernel) -> str:
    op = kernel.op
    if op in _TRANSCENDENTAL:
        return "transcendental"
    if op in _UNARY:
        return "unary"
    if op in BINARY_OPS:
        return "binary"
    if op in _REDUCTIONS:
        return "reduction"
    if op in ("L2_POOL_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return "pool"
    if op.startswith("RESIZE_"):
        return "resize"
    if op in ("BATCH_MATMUL", "FULLY_CONNECTED", "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM"):
        return "matmul"
    if op in ("CONV_3D", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        return "conv"
    return "move"


def stand_in(kernel: Kernel, priced: set[str]) -> Kernel | None:
    """The calibrated kernel nearest to `kernel`, whose coefficients price it when its own family
    was never calibrated (`priced`: the families a fitted model knows): the same family in another
    variant (QUANTIZE's int8 -> uint8 for its float -> int8, a broadcast for a plain ADD), else the
    nearest family doing the same kind of work (element-wise, data movement, reduction, ...), with
    the same element counts. None when nothing near was calibrated."""
    known = priced if isinstance(priced, frozenset) else frozenset(priced)
    choice = _stand_in_choice(kernel.op, kernel.family, kernel.dtype, kernel.variant, known)
    return None if choice is None else kernel._replace(family=choice[0], variant=choice[1])


def stand_in_key(key: str, priced: frozenset[str]) -> str | None:
    """The coefficient key `stand_in` would price a kernel of coefficient key `key` (family, hybrid
    weights, variant) by, among the `priced` keys; None when nothing near is priced."""
    parts = key.split("/")
    family, hybrid = parts[0], "hybrid" in parts[1:]
    dtype = "hybrid" if hybrid else ""
    choice = _stand_in_choice(_OP_OF.get(family, family.upper()), family, dtype,
                              "/".join(p for p in parts[1:] if p != "hybrid"), frozenset(priced))
    return None if choice is None else Kernel(choice[0], dtype, (), 0, variant=choice[1]).key


_OP_OF = {family: op for op, family in _OPS.items() if op not in ("SQUEEZE", "EXPAND_DIMS", "PADV2")}


@lru_cache(maxsize=4096)
def _stand_in_choice(op: str, family: str, dtype: str, variant: str, priced: frozenset[str]) -> tuple[str, str] | None:
    """`stand_in`'s pick, (family, variant), worked out once per kind of kernel and fitted model."""
    kernel = Kernel(family, dtype, (), 0, op=op, variant=variant)
    same = sorted(f for f in priced if f.split("/")[0] == family and f != kernel.key)
    candidates = [kernel._replace(variant=f.split("/", 1)[1] if "/" in f else "") for f in same
                  if "/hybrid" not in f or dtype == "hybrid"]
    candidates += [kernel._replace(family=f, variant="broadcast" if variant == "broadcast" else "")
                   for f in _NEAREST[_kind(kernel)] if f != family]
    candidates += [kernel._replace(family=f, variant="") for f in _NEAREST[_kind(kernel)] if f != family]
    for candidate in candidates:
        if candidate.key in priced:
            return candidate.family, candidate.variant
    return None


#: An operator priced by a stand-in kernel may cost this many times its estimate more or less
#: (x2 either way): its share of the prediction, times this, widens the stated error, where the
#: artifact has no spread measured on its calibration (`stand_in_spread`).
ESTIMATE_SPREAD = 1.0


def _widening(artifact: dict, shares, mode: str) -> tuple[float, float]:
    """Percentage points added to the stated mean and maximum error for the operators priced by
    stand-ins (`shares`: (operator, stand-in, % of the prediction)): each share times how far a
    stand-in's price strayed from an operator's own in the calibration of this mode (of all modes
    where this one has fewer than 5 family / stand-in pairs), on average and at most."""
    share = sum(s for _, _, s in shares)
    if not share:
        return 0.0, 0.0
    spread = artifact.get("stand_in_spread") or {}
    mine = (spread.get("modes") or {}).get(mode)
    spread = mine if mine and mine["pairs"] >= 5 else spread
    return share * spread.get("mean", ESTIMATE_SPREAD), share * spread.get("max", ESTIMATE_SPREAD)


def with_stand_ins(kernels, model, priced_by: str = "kernel"):
    """`kernels` with each one the fitted `model` never saw replaced by its nearest calibrated
    stand-in (`stand_in`), and what was replaced: (operator[/variant], stand-in family, its cost)."""
    kernels, estimated, _ = _priced_row(kernels, model, priced_by)
    return kernels, estimated


def _priced_row(kernels, model, priced_by: str):
    """`with_stand_ins`, and the summed features of the kernels it returns (`features` of them)."""
    # a list of its own, whatever the caller gave (read more than once below); CMSIS-NN's kernel choice named
    kernels = cmsisnn_kernels(kernels) if priced_by == "cmsisnn" else list(kernels)
    known = model.families()
    if known is None:
        return kernels, [], features(kernels, priced_by)
    by_shape = priced_by != "xnnpack"  # every feature of a kernel then goes under its own key
    grouped = by_key(kernels) if by_shape else None
    if grouped is not None and known.issuperset(grouped):
        return kernels, [], features(kernels, priced_by, grouped)
    # each distinct kernel the model may not know checked once (an unrolled recurrent net repeats its steps' kernels)
    doubtful = (dict.fromkeys(kernels) if grouped is None else
                dict.fromkeys(k for key, members in grouped.items() if key not in known for k in members))
    substitutes: dict = {}  # kernel -> (its stand-in, the stand-in's cost)
    for kernel in doubtful:
        if not (kernel.key in known if by_shape else
                all(_family(name) in known for name, v in kernel_features(kernel, priced_by).items() if v)):
            substitute = stand_in(kernel, known)
            if substitute is not None:  # else left for the caller to refuse, by name
                cost = sum(model.coef.get(name, 0.0) * v for name, v in kernel_features(substitute, priced_by).items())
                substitutes[kernel] = (substitute, cost)
    if not substitutes:
        return kernels, [], features(kernels, priced_by, grouped)
    out = []
    estimated: dict[tuple[str, str], float] = {}  # (operator[/variant], stand-in) -> cost, summed over its kernels
    for kernel in kernels:
        replaced = substitutes.get(kernel)
        if replaced is not None:
            substitute, cost = replaced
            label = kernel.op + (f"/{kernel.variant}" if kernel.variant else "")
            estimated[(label, substitute.key)] = estimated.get((label, substitute.key), 0.0) + cost
            kernel = substitute
        out.append(kernel)
    return out, [(label, key, cost) for (label, key), cost in estimated.items()], features(out, priced_by)


@lru_cache(maxsize=16384)
def _family(feature: str) -> str:
    """The kernel family (coefficient prefix) of a feature name."""
    return feature.split(":")[0]
