"""The features latency models are fitted on: each kernel's shape figures (MACs, taps, elements,
weights), or, for LiteRT counted under valgrind, the tiles of the XNNPACK micro-kernel that runs it."""

from __future__ import annotations

from operator import attrgetter

from ._kernels import Kernel, summed_features

_MACS = attrgetter("macs")

__all__ = ["features", "feature_set", "xnnpack_features", "kernel_features", "cmsisnn_kernel", "cmsisnn_kernels"]


def kernel_features(kernel: Kernel, feature_set: str = "kernel") -> dict[str, float]:
    """One kernel's features in `feature_set` (what `features` sums)."""
    if feature_set == "cmsisnn":
        return cmsisnn_kernel(kernel).features()
    return (xnnpack_features(kernel) if feature_set == "xnnpack" else None) or kernel.features()


def cmsisnn_kernel(kernel: Kernel) -> Kernel:
    """An int8 convolution as CMSIS-NN runs it: the kernel its wrappers pick (CMSIS-NN 4ab83cc,
    `arm_convolve_wrapper_s8.c`, `arm_depthwise_conv_wrapper_s8.c`) as the kernel's variant.
    A 1x1 convolution runs `arm_convolve_1x1_s8_fast` at stride 1, `arm_convolve_1x1_s8` otherwise;
    any other one im2col and a matrix product (`arm_convolve_s8`; its 1xN path needs an input of
    height 1, which a kernel does not record); a 3x3 depthwise one `arm_depthwise_conv_3x3_s8`, any
    other with one output channel per input channel `arm_depthwise_conv_s8_opt` (the search spaces'
    depthwise layers all have one). Kernels with a variant of their own (dilated, ...) keep it."""
    if kernel.dtype != "int8" or kernel.variant or kernel.family not in ("conv", "dwconv"):
        return kernel
    if kernel.family == "conv":
        path = ("1x1-fast" if kernel.stride == 1 else "1x1") if kernel.window == 1 else "im2col"
    else:
        path = "3x3" if kernel.window == 9 else "opt"
    return kernel._replace(variant=path)


def cmsisnn_kernels(kernels) -> list[Kernel]:
    return [cmsisnn_kernel(k) for k in kernels]

def features(kernels: list[Kernel], feature_set: str = "kernel", grouped: dict[str, list[Kernel]] | None = None) -> dict[str, float]:
    """Summed kernel features of one model, plus the graph-wide ones. `grouped`, where given, is
    `kernels` grouped by key (`by_key`), so as not to group them again.

    With `feature_set="xnnpack"` the convolutions and fully connected layers that XNNPACK runs
    are described by the micro-kernel tiles it executes (`xnnpack_features`) instead of by their
    shapes: its cost per MAC varies 20-fold with how the shapes fall into those tiles."""
    if feature_set == "cmsisnn":
        kernels, grouped = cmsisnn_kernels(kernels), None
    total: dict[str, float] = {"graph:n": 1.0, "graph:ops": float(len(kernels)),
                               "graph:macs": float(sum(map(_MACS, kernels)))}  # for the MACs-linear floor only
    if feature_set != "xnnpack":
        total.update(summed_features(kernels if grouped is None else grouped))
        return total
    for kernel in kernels:
        values = kernel_features(kernel, feature_set)
        for name, value in values.items():
            total[name] = total.get(name, 0.0) + value
    return total


def feature_set(runtime: str, measure: str, kernels: str = "") -> str:
    """Which features price a device's kernels: XNNPACK's tiles for LiteRT counted under valgrind,
    whose virtual CPU (AVX2/FMA3) fixes the micro-kernels `xnnpack_features` describes; kernel
    shapes under the CMSIS-NN kernel each int8 convolution runs (`cmsisnn_kernel`) for TFLite
    Micro's CMSIS-NN build; kernel shapes otherwise (TFLite Micro; LiteRT timed natively, where
    XNNPACK picks the host's own, e.g. AVX-512, micro-kernels)."""
    if kernels == "cmsisnn":
        return "cmsisnn"
    return "xnnpack" if runtime == "litert" and measure == "icount" else "kernel"


def _nr2_for_gemm(n: int, nr: int = 16, nr2: int = 8) -> bool:
    """Whether XNNPACK's float GEMM (1x1 convolution, fully connected) switches from its 16-wide
    default to the 8-wide kernel: fewer channels than 16, or less overcompute where the default
    wastes more than 1% of them (XNNPACK's fully-connected-nc.c). Under callgrind, 1x1 convolutions
    and fully connected layers of 12 and 20 channels ran the 8-wide kernels, of 28, 42 and 44 (equal
    waste) the 16-wide ones."""
    over, over2 = (nr - n % nr) % nr, (nr2 - n % nr2) % nr2
    return nr > n or (over2 < over and over * 100 > n)


#: XNNPACK's micro-kernels as LiteRT 2.x picks them on x86-64 with AVX2/FMA3 (what valgrind
#: presents), read from callgrind profiles of single-operator models:
#: (data path, kind) -> rule giving (mr, nr, kr) from the output channels.
_XNN_GEMM = {
    ("f32", "gemm"): lambda n: (10, 8, 1) if _nr2_for_gemm(n) else (6, 16, 1),
    # a convolution's indirect GEMM takes the 8-wide kernel only below 16 channels (convolution-nhwc.c;
    # callgrind: 12 channels ran 10x8, 24 ran 5x16)
    ("f32", "igemm"): lambda n: (10, 8, 1) if n < 16 else (5, 16, 1),
    ("f32", "fc"): lambda n: (1, 8, 1) if _nr2_for_gemm(n) else (1, 16, 1),
    ("qs8", "gemm"): lambda n: (3, 8, 8), ("qs8", "igemm"): lambda n: (3, 8, 8), ("qs8", "fc"): lambda n: (1, 8, 8),
    ("qd8", "gemm"): lambda n: (4, 8, 8), ("qd8", "igemm"): lambda n: (4, 8, 8), ("qd8", "fc"): lambda n: (1, 8, 8),
}
#: Depthwise micro-kernels hold this many filter taps (16 channels a pass); larger filters run as
#: a grouped igemm, one output channel a group.
_XNN_DW_TAPS = (3, 9, 25)
_XNN_PATH = {"float32": "f32", "int8": "qs8", "hybrid": "qd8"}


def xnnpack_features(kernel: Kernel) -> dict[str, float] | None:
    """Tile counts of the XNNPACK micro-kernel that runs `kernel`, or None when XNNPACK does not
    run it (int16 activations, hybrid depthwise: TFLite's own kernels) or it is not a convolution
    (a 1-D global MEAN is priced as the global pool XNNPACK runs it as).

    A GEMM micro-kernel call computes mr output pixels x nr channels over K in steps of kr:
    `rows` counts row tiles (one call each), `blocks` row x column tiles, `steps` their inner
    iterations; an indirect GEMM (igemm, any convolution but 1x1 stride 1) loops over filter taps
    too (`taps`). One row (a fully connected layer of batch 1, a 1x1 convolution of one pixel)
    runs the 1-row kernel; a fully connected layer of several rows (a 3-D input) runs the same
    GEMM as a 1x1 convolution (callgrind: 6x16 for float, 3x8c8 for int8, at 3 and at 20 rows).
    A depthwise micro-kernel runs per output pixel, 16 channels a pass."""
    path = _XNN_PATH.get(kernel.dtype)
    if path is not None and kernel.family == "mean" and kernel.variant == "partial" and kernel.window:
        # a MEAN over the innermost axis alone (a layer norm's): XNNPACK's contiguous reduction, a row
        # sum per output (callgrind, a tiny ViT's ten over 32 channels: 35K instructions, where the
        # strided reductions' coefficients priced them 114K). Layer norms of Keras' default epsilon
        # convert to a reduction over a transposed tensor instead; `layer-norm/eps` calibrates this one
        return {"mean/inner:n": 1.0, "mean/inner:in": float(sum(kernel.inputs)), "mean/inner:out": float(kernel.out)}
    if path is not None and kernel.family == "mean" and kernel.variant == "partial" and kernel.channels == kernel.out:
        # a MEAN over every axis but the channels of a tensor that is not 4-D (1-D global pooling):
        # XNNPACK runs it as the global pool's row sum (callgrind: 813 instructions for a (1, 58, 64)
        # int8 MEAN, not the partial reductions' ~22 per element); TFLite Micro's reference MEAN
        # special-cases only 4-D, so there it stays partial
        return {"mean:n": 1.0, "mean:in": float(sum(kernel.inputs)), "mean:out": float(kernel.out)}
    if kernel.family == "batch_matmul" and kernel.channels and kernel.macs and (
            path == "f32" or (path == "qs8" and kernel.symmetric)):
        return _xnn_batch_matmul(kernel, path)
    if path is not None and kernel.family == "pad":
        # XNNPACK pads row by row: a call per output row (all dimensions but the innermost), each
        # copying or filling one row (callgrind, a (1, 98, 32) int8 tensor padded to (1, 100, 32):
        # ~150 instructions a row, whatever the bytes), so rows price it, not only elements. PADV2
        # (a constant other than zero) is priced apart: its float rows cost less than half PAD's, and
        # in int8 half the generated models ran 3-4x their float twins (not XNNPACK's pad) where
        # every int8 PAD model cost what its float twin did.
        key = "pad/v2" if kernel.op == "PADV2" else "pad"
        return {f"{key}:n": 1.0, f"{key}:in": float(sum(kernel.inputs)), f"{key}:out": float(kernel.out),
                f"{key}:px": float(kernel.out // kernel.channels if kernel.channels else 1)}
    if path is not None and kernel.family == "reshape" and not kernel.edge:
        # XNNPACK elides a reshape between two of its operators (callgrind: no copy runs for the 18
        # RESHAPE and EXPAND_DIMS of a 1-D TCN); one that reads a graph input or writes a graph
        # output copies (`reshape:in`)
        return {"reshape/internal:n": 1.0}
    if kernel.family == "transpose_conv" and (path not in ("f32", "qs8") or not kernel.window):
        return None
    if kernel.family == "transpose_conv" and kernel.stride > 1 and kernel.channels:
        return _xnn_subconvolution(kernel, path)
    if path is None or kernel.family not in ("conv", "dwconv", "fc", "transpose_conv") or not kernel.channels:
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
    elif kernel.family == "transpose_conv":  # stride 1: a convolution's indirect GEMM (callgrind: 10x8 for 4 float channels)
        groups, n, k_in, kind = 1, channels, kernel.weights // (channels * window), "igemm"
    elif kernel.family == "fc":  # a GEMM of `pixels` rows (a 3-D input's rows): the 1-row kernel only for one row
        groups, n, k_in, kind = 1, channels, kernel.weights // channels, "fc" if pixels == 1 else "gemm"
    else:
        groups, n, k_in = 1, channels, kernel.macs // max(kernel.taps, 1)
        kind = "gemm" if window == 1 and kernel.stride == 1 else "igemm"
        if kind == "gemm" and pixels == 1:  # one row (a squeeze-excite 1x1 conv): XNNPACK's 1-row kernel, as for fc
            kind = "fc"
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


def _xnn_subconvolution(kernel: Kernel, path: str) -> dict[str, float]:
    """A transposed convolution of stride above 1 as XNNPACK runs it (float or int8; stride 1 runs a
    convolution's indirect GEMM, priced with the convolutions): one sub-convolution a stride phase,
    each an indirect GEMM of one output pixel a call (the 1-row micro-kernel: float 1x8 or 1x16 as a
    convolution's width rule picks, int8 1x8c8), looping over the phase's share of the filter taps;
    every input pixel meets every tap once in all, so taps = input pixels x kh x kw (callgrind: a call
    per output pixel, float at 4, 8, 16 and 32 channels, int8 at 4, 16 and 32 channels of 4x4 and 2x2
    filters)."""
    channels, window = kernel.channels, kernel.window
    k_in = kernel.weights // (channels * window)
    in_pixels = kernel.macs // max(channels * window * k_in, 1)
    pixels = max(kernel.out // channels, 1)
    _, nr, kr = _XNN_GEMM[(path, "igemm")](channels)
    across = -(-channels // nr)
    name = f"xnn-{path}-subconv1x{nr}" + (f"c{kr}" if kr > 1 else "")
    taps = across * in_pixels * window
    return {f"{name}:rows": pixels, f"{name}:blocks": pixels * across, f"{name}:taps": taps,
            f"{name}:steps": taps * -(-k_in // kr), "transpose_conv:n": 1.0}


def _xnn_batch_matmul(kernel: Kernel, path: str = "f32") -> dict[str, float]:
    """A BATCH_MATMUL as XNNPACK runs it: a right operand that is not constant packed on every
    invoke (`batch_matmul/pack:in`, its elements), then a grouped GEMM, one group a product of the
    batch, tiled as a 1x1 convolution's GEMM (callgrind, a tiny ViT's float32 file: four products
    ran `xnn_compute_batched_packw_gemm_goi` and the 6x16 GEMM in `xnn_compute_hmp_grouped_gemm`).
    An int8 product runs here only when its right operand's zero point is 0 (`Kernel.symmetric`;
    otherwise TFLite's reference kernel): the int8 GEMM's 3x8c8 micro-kernel (callgrind, a DeiT
    file whose one such product of four ran `xnn_compute_hmp_grouped_gemm` with
    `xnn_qs8_qc8w_gemm_minmax_fp32_ukernel_3x8c8`), priced by that GEMM's tile coefficients: the
    generated attention models hold too few such products to fit their own."""
    n, groups = kernel.channels, max(kernel.runs, 1)
    k_in = kernel.macs // max(kernel.out, 1)
    m = max(kernel.out // (n * groups), 1)
    if path == "f32":  # its default GEMM whatever N (callgrind: the Conformer's products of N = 12 and 49 ran 6x16)
        mr, nr, kr, name = 6, 16, 1, "xnn-f32-bmm6x16"
    else:  # the 1x1 convolutions' GEMM: its tiles and its coefficients
        mr, nr, kr = _XNN_GEMM[(path, "gemm")](n)
        name = f"xnn-{path}-gemm{mr}x{nr}c{kr}"
    rows = groups * -(-m // mr)
    blocks = rows * -(-n // nr)
    out = {f"{name}:rows": rows, f"{name}:blocks": blocks, f"{name}:steps": blocks * -(-k_in // kr), "batch_matmul:n": 1.0}
    if path == "f32":  # int8 packing is left in the tiles' cost: no int8 model in the fit packs (none was symmetric)
        out["batch_matmul/pack:in"] = float(kernel.inputs[1]) if len(kernel.inputs) > 1 else 0.0
    return out
