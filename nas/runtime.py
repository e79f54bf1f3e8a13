"""Running .tflite bytes: LiteRT on the host (accuracy, latency) and the TFLite Micro interpreter
(compatibility, tensor arena, predictions)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import statistics
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from .errors import CandidateFailed

__all__ = ["litert_predict", "host_latency_ms", "tflm_arena", "tflm_predict", "TflmArena", "quantize_input"]


def _litert(model: bytes, threads: int = 1, reference: bool = False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # reference=True: LiteRT's reference kernels, the same integer arithmetic as TFLite Micro's.
    # The default (XNNPACK) int8 kernels round differently, by a few output LSBs.
    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    try:
        return Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=resolver)
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


def litert_predict(model: bytes, x: np.ndarray, batch_size: int = 256, reference: bool = False) -> np.ndarray:
    """Class scores for prepared inputs `x`, with batched invocation (1 thread)."""
    interpreter = _litert(model, reference=reference)
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
        interpreter.allocate_tensors()
    except Exception as exc:
        raise CandidateFailed("litert", f"allocation failed: {_one_line(exc)}") from None
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


class _TflmWorker:
    """The parent side of `nas._tflm_worker`: sends requests, restarts the child if it dies."""

    def __init__(self, model: bytes):
        self._dir = tempfile.TemporaryDirectory(prefix="nas-tflm-")
        self._model_path = os.path.join(self._dir.name, "model.tflite")
        with open(self._model_path, "wb") as fh:
            fh.write(model)
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "_TflmWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
            self._proc = None
        self._dir.cleanup()

    def request(self, *words: object) -> dict:
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "nas._tflm_worker", self._model_path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))},
            )
        try:
            self._proc.stdin.write(" ".join(map(str, words)) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if line:
            return json.loads(line)
        code = self._proc.wait(timeout=30)
        self._proc = None
        return {"ok": False, "crashed": True, "log": _crash_reason(code)}

    def path(self, name: str) -> str:
        return os.path.join(self._dir.name, name)


def _crash_reason(code: int) -> str:
    import signal

    if code == -signal.SIGABRT:
        # seen: CalculateSoftmaxParams -> QuantizeMultiplierGreaterThanOne aborts when the softmax
        # input scale is tiny (near-constant logits, e.g. an untrained model)
        return "the TFLite Micro interpreter aborted (SIGABRT): a kernel's parameter check failed"
    if code == -signal.SIGSEGV:
        return "the TFLite Micro interpreter crashed (SIGSEGV)"
    return f"the TFLite Micro interpreter crashed (exit code {code})"


_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class TflmArena:
    compatible: bool
    arena_bytes: int | None  # smallest arena that allocates (16-byte granularity)
    reason: str = ""  # why the model does not run, when not compatible
    crashed: bool = False  # the interpreter died at every size tried, rather than refusing the model
    head_bytes: int | None = None  # activations, as the interpreter's memory planner laid them out
    tail_bytes: int | None = None  # tensor, operator and kernel records kept between invocations


_MAX_ARENA = 256 * 1024 * 1024
_REASON_HINTS = ("Didn't find op", "not supported", "Hybrid", "Unsupported", "unsupported", "Failed to get registration")


def _reason_from(reply: dict) -> str:
    lines = [line.strip() for line in reply.get("log", "").splitlines() if line.strip()]
    for line in lines:
        if any(hint in line for hint in _REASON_HINTS):
            return line[:300]
    return lines[0][:300] if lines else reply.get("error", "TFLite Micro failed to allocate the model")


def tflm_arena(model: bytes) -> TflmArena:
    """Whether TFLite Micro runs `model`, and the smallest arena it allocates in (bisected).

    Allocation happens when the interpreter is built; one inference at the found size
    confirms that the arena suffices to run, not only to plan.
    """
    with _TflmWorker(model) as worker:
        hi = 16 * 1024
        reply = worker.request("probe", hi)
        while not reply["ok"] and hi < _MAX_ARENA:
            hi *= 4
            reply = worker.request("probe", hi)
        if not reply["ok"]:
            return TflmArena(False, None, _reason_from(reply), crashed=bool(reply.get("crashed")))
        lo = hi // 4 if hi > 16 * 1024 else 0
        while hi - lo > 16:
            mid = (lo + hi) // 2 // 16 * 16
            if mid <= lo:
                break
            if worker.request("probe", mid)["ok"]:
                hi = mid
            else:
                lo = mid
        detail = _input_detail(model)
        np.save(worker.path("zeros.npy"), np.zeros(detail["shape"], detail["dtype"]))
        reply = worker.request("run", hi, worker.path("zeros.npy"), worker.path("out.npy"), "allocations")
        if not reply["ok"]:
            return TflmArena(False, None, f"allocates in {hi} bytes but fails to run: {_reason_from(reply)}",
                             crashed=bool(reply.get("crashed")))
        split = {part: re.search(rf"allocation {part} (\d+) bytes", reply.get("log", ""))
                 for part in ("head", "tail")}
    return TflmArena(True, hi, head_bytes=int(split["head"].group(1)) if split["head"] else None,
                     tail_bytes=int(split["tail"].group(1)) if split["tail"] else None)


def _input_detail(model: bytes, output: bool = False) -> dict:
    interpreter = _litert(model)
    detail = (interpreter.get_output_details() if output else interpreter.get_input_details())[0]
    return {"dtype": detail["dtype"], "quantization": detail["quantization"], "shape": detail["shape"]}


def tflm_predict(model: bytes, x: np.ndarray, arena_bytes: int) -> np.ndarray:
    """Class scores from the TFLite Micro interpreter, one sample at a time as on a device."""
    detail = _input_detail(model)
    with _TflmWorker(model) as worker:
        np.save(worker.path("x.npy"), quantize_input(x, detail))
        reply = worker.request("run", arena_bytes, worker.path("x.npy"), worker.path("y.npy"))
        if not reply["ok"]:
            raise CandidateFailed("tflm", _reason_from(reply))
        return _dequantize(np.load(worker.path("y.npy"), allow_pickle=False), _input_detail(model, output=True))
