"""Running .tflite bytes in LiteRT on the host: class scores (accuracy) and single-sample latency."""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..errors import CandidateFailed
from ..logs import stderr_to_log

__all__ = ["litert_predict", "host_latency_ms", "warm_invoke", "median_invoke_ms", "quantize_input", "dequantize_output",
           "tensor_detail", "one_line"]


def _litert(model: bytes, threads: int = 1, reference: bool = False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # reference=True: LiteRT's reference kernels, the same integer arithmetic as TFLite Micro's.
    # The default (XNNPACK) int8 kernels round differently, by a few output LSBs.
    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    try:
        with stderr_to_log("nas.litert"):  # "Created TensorFlow Lite XNNPACK delegate", ...
            return Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=resolver)
    except Exception as exc:
        raise CandidateFailed("litert", f"cannot load model: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters (its type when it has none)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float inputs in [0, 1] -> the input tensor's dtype through its scale and zero point."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """An output tensor's values as floats, through its scale and zero point."""
    if np.dtype(detail["dtype"]) == np.float32:
        return y
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale


def tensor_detail(model: bytes, output: bool = False) -> dict:
    """dtype, quantization (scale, zero point) and shape of a model's first input (or output)."""
    interpreter = _litert(model)
    detail = (interpreter.get_output_details() if output else interpreter.get_input_details())[0]
    return {"dtype": detail["dtype"], "quantization": detail["quantization"], "shape": detail["shape"]}


def litert_predict(model: bytes, x: np.ndarray, batch_size: int = 256, reference: bool = False) -> np.ndarray:
    """Class scores for prepared inputs `x`, with batched invocation (1 thread)."""
    interpreter = _litert(model, reference=reference)
    detail = interpreter.get_input_details()[0]
    batch = int(min(batch_size, len(x)))
    try:
        with stderr_to_log("nas.litert"):  # the XNNPACK delegate announces itself when it is applied
            interpreter.resize_tensor_input(detail["index"], [batch, *x.shape[1:]])
            interpreter.allocate_tensors()
    except Exception as exc:
        raise CandidateFailed("litert", f"allocation failed: {one_line(exc)}") from None
    detail = interpreter.get_input_details()[0]
    out_detail = interpreter.get_output_details()[0]
    scores = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        n = len(chunk)
        if n < batch:  # pad the last batch rather than re-allocating
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), chunk.dtype)])
        interpreter.set_tensor(detail["index"], quantize_input(chunk, detail))
        try:
            interpreter.invoke()
        except Exception as exc:
            raise CandidateFailed("litert", f"invoke failed: {one_line(exc)}") from None
        scores.append(dequantize_output(interpreter.get_tensor(out_detail["index"]), out_detail)[:n])
    result = np.concatenate(scores)
    if not np.all(np.isfinite(result)):
        raise CandidateFailed("litert", "the converted model outputs NaN or infinity")
    return result


def host_latency_ms(model: bytes, warmup: int = 3, repeats: int = 30, budget_s: float = 1.0, min_repeats: int = 5) -> float:
    """Median wall-clock ms of one single-sample inference under LiteRT, 1 thread, after warm-up.

    Takes `repeats` timings, or as many as fit in `budget_s` (never fewer than `min_repeats`),
    so that slow modes (int16x8 runs 30-50x slower than float32 on x86) stay affordable.
    """
    return median_invoke_ms(warm_invoke(model, warmup), repeats, budget_s, min_repeats)


def warm_invoke(model: bytes, warmup: int = 3):
    """The `invoke` of a LiteRT interpreter (1 thread) allocated, fed zeros and invoked `warmup` times."""
    interpreter = _litert(model)
    try:
        with stderr_to_log("nas.litert"):
            interpreter.allocate_tensors()
    except Exception as exc:
        raise CandidateFailed("litert", f"allocation failed: {one_line(exc)}") from None
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(warmup):
        interpreter.invoke()
    return interpreter.invoke


def median_invoke_ms(invoke, repeats: int, budget_s: float, min_repeats: int) -> float:
    """Median ms of `repeats` calls, or of as many as fit in `budget_s` (at least `min_repeats`)."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < repeats and (len(times) < min_repeats or time.perf_counter() < deadline):
        start = time.perf_counter()
        invoke()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0
