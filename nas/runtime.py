"""Running .tflite bytes: LiteRT on the host (accuracy, latency) and the TFLite Micro interpreter
(compatibility, tensor arena, predictions)."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from .errors import CandidateFailed

__all__ = ["litert_predict", "host_latency_ms", "tflm_arena", "tflm_predict", "TflmArena", "quantize_input"]


def _litert(model: bytes, threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    try:
        return Interpreter(model_content=model, num_threads=threads)
    except Exception as exc:
        raise CandidateFailed("litert", f"cannot load model: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float inputs in [0, 1] -> the input tensor's dtype through its scale and zero point."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]) == np.float32:
        return y
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale


def litert_predict(model: bytes, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class scores for prepared inputs `x`, with batched invocation (1 thread)."""
    interpreter = _litert(model)
    detail = interpreter.get_input_details()[0]
    batch = int(min(batch_size, len(x)))
    try:
        interpreter.resize_tensor_input(detail["index"], [batch, *x.shape[1:]])
        interpreter.allocate_tensors()
    except Exception as exc:
        raise CandidateFailed("litert", f"allocation failed: {_one_line(exc)}") from None
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
            raise CandidateFailed("litert", f"invoke failed: {_one_line(exc)}") from None
        scores.append(_dequantize(interpreter.get_tensor(out_detail["index"]), out_detail)[:n])
    result = np.concatenate(scores)
    if not np.all(np.isfinite(result)):
        raise CandidateFailed("litert", "the converted model outputs NaN or infinity")
    return result


def host_latency_ms(model: bytes, warmup: int = 5, repeats: int = 30) -> float:
    """Median wall-clock ms of one single-sample inference under LiteRT, 1 thread, after warm-up."""
    interpreter = _litert(model)
    try:
        interpreter.allocate_tensors()
    except Exception as exc:
        raise CandidateFailed("litert", f"allocation failed: {_one_line(exc)}") from None
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


# --- TFLite Micro ----------------------------------------------------------------------------
@contextlib.contextmanager
def _captured_stderr():
    """Capture what the C++ runtime writes to file descriptor 2 (TFLite Micro reports there)."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            box: list[str] = []
            yield box
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            box.append(sink.read().decode(errors="replace"))


def _tflm(model: bytes, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


@dataclass(frozen=True)
class TflmArena:
    compatible: bool
    arena_bytes: int | None  # smallest arena that allocates (16-byte granularity)
    reason: str = ""  # why the model does not run, when not compatible


_MAX_ARENA = 256 * 1024 * 1024
_REASON_HINTS = ("Didn't find op", "not supported", "Hybrid", "Unsupported", "unsupported", "Failed to get registration")


def _reason_from(log: str, exc: BaseException) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in lines:
        if any(hint in line for hint in _REASON_HINTS):
            return line[:300]
    return (lines[0][:300] if lines else _one_line(exc))


def tflm_arena(model: bytes) -> TflmArena:
    """Whether TFLite Micro runs `model`, and the smallest arena it allocates in (bisected).

    Allocation happens when the interpreter is built; one inference at the found size
    confirms the arena suffices to run, not only to plan.
    """
    with _captured_stderr() as log:
        hi, allocated, error = 16 * 1024, False, None
        while not allocated and hi <= _MAX_ARENA:
            try:
                _tflm(model, hi)
                allocated = True
            except Exception as exc:  # RuntimeError from the wrapper
                error, hi = exc, hi * 4
    if not allocated:
        return TflmArena(False, None, _reason_from(log[0], error))
    lo = hi // 4 if hi > 16 * 1024 else 0
    with _captured_stderr():
        while hi - lo > 16:
            mid = (lo + hi) // 2 // 16 * 16
            if mid <= lo:
                break
            try:
                _tflm(model, mid)
                hi = mid
            except Exception:
                lo = mid
        interpreter = _tflm(model, hi)
        _invoke_zeros(interpreter, model)
    return TflmArena(True, hi)


def _input_detail(model: bytes) -> dict:
    interpreter = _litert(model)
    detail = interpreter.get_input_details()[0]
    return {"dtype": detail["dtype"], "quantization": detail["quantization"], "shape": detail["shape"]}


def _invoke_zeros(interpreter, model: bytes) -> None:
    detail = _input_detail(model)
    interpreter.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
    interpreter.invoke()


def tflm_predict(model: bytes, x: np.ndarray, arena_bytes: int) -> np.ndarray:
    """Class scores from the TFLite Micro interpreter, one sample at a time as on a device."""
    detail = _input_detail(model)
    with _captured_stderr() as log:
        try:
            interpreter = _tflm(model, arena_bytes)
            outputs = []
            for sample in x:
                interpreter.set_input(quantize_input(sample[None], detail), 0)
                interpreter.invoke()
                outputs.append(np.array(interpreter.get_output(0)).reshape(-1))
        except Exception as exc:
            failure = exc
        else:
            failure = None
    if failure is not None:
        raise CandidateFailed("tflm", _reason_from(log[0], failure))
    return np.stack(outputs)
