"""The TFLite Micro interpreter on the host: whether it runs a model, the smallest tensor arena it
allocates in, and its predictions. The interpreter runs in a child process (`_tflm_worker`)."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from ..errors import CandidateFailed
from ._litert import dequantize_output, quantize_input, tensor_detail

__all__ = ["TflmArena", "TflmWorker", "tflm_arena", "tflm_predict"]

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


#: Seconds a request may take before the interpreter counts as hung: a base, plus per sample run.
TIMEOUT_S, TIMEOUT_PER_SAMPLE_S = 120.0, 1.0


class TflmWorker:
    """The parent side of `nas.measure._tflm_worker`: sends requests, restarts the child if it dies.

    `request("probe", ARENA)` or `request("run", ARENA, IN.npy, OUT.npy[, "allocations"])` returns
    the child's reply, `{"ok": bool, "log": str, ...}`; a child that died answers
    `{"ok": False, "crashed": True, "log": reason}` and is restarted on the next request, and one
    that does not answer within `timeout_s` is killed and answers the same, saying so."""

    #: The child process; tests replace it to simulate an interpreter that hangs.
    command = (sys.executable, "-m", "nas.measure._tflm_worker")

    def __init__(self, model: bytes):
        self._dir = tempfile.TemporaryDirectory(prefix="nas-tflm-")
        self._model_path = os.path.join(self._dir.name, "model.tflite")
        with open(self._model_path, "wb") as fh:
            fh.write(model)
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "TflmWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        self._dir.cleanup()

    def request(self, *words: object, timeout_s: float | None = None) -> dict:
        timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
        if self._proc is None:
            self._proc = subprocess.Popen(
                [*self.command, self._model_path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))},
            )
        try:
            self._proc.stdin.write(" ".join(map(str, words)) + "\n")
            self._proc.stdin.flush()
            if not select.select([self._proc.stdout], [], [], timeout_s)[0]:
                self._proc.kill()
                self._proc.wait()
                self._proc = None
                return {"ok": False, "crashed": True, "hung": True,
                        "log": f"the TFLite Micro interpreter did not answer within {timeout_s:.0f} s and was killed"}
            line = self._proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if line:
            return json.loads(line)
        code = self._proc.wait(timeout=30)
        self._proc = None
        return {"ok": False, "crashed": True, "log": _crash_reason(code)}

    def path(self, name: str) -> str:
        """A path in the worker's temporary folder, for input and output arrays."""
        return os.path.join(self._dir.name, name)


def _crash_reason(code: int) -> str:
    if code == -signal.SIGABRT:
        # seen: CalculateSoftmaxParams -> QuantizeMultiplierGreaterThanOne aborts when the softmax
        # input scale is tiny (near-constant logits, e.g. an untrained model)
        return "the TFLite Micro interpreter aborted (SIGABRT): a kernel's parameter check failed"
    if code == -signal.SIGSEGV:
        return "the TFLite Micro interpreter crashed (SIGSEGV)"
    return f"the TFLite Micro interpreter crashed (exit code {code})"


@dataclass(frozen=True)
class TflmArena:
    compatible: bool
    arena_bytes: int | None  # smallest arena that allocates (16-byte granularity)
    reason: str = ""  # why the model does not run, when not compatible
    crashed: bool = False  # the interpreter died at every size tried, rather than refusing the model
    head_bytes: int | None = None  # activations, as the interpreter's memory planner laid them out
    tail_bytes: int | None = None  # tensor, operator and kernel records kept between invocations


_MAX_ARENA = 256 * 1024 * 1024
_REASON_HINTS = ("did not answer", "Didn't find op", "not supported", "Hybrid", "Unsupported", "unsupported", "Failed to get registration")


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
    with TflmWorker(model) as worker:
        hi = 16 * 1024
        reply = worker.request("probe", hi)
        while not reply["ok"] and not reply.get("hung") and hi < _MAX_ARENA:
            hi *= 4
            reply = worker.request("probe", hi)
        if not reply["ok"]:
            return TflmArena(False, None, _reason_from(reply), crashed=bool(reply.get("crashed")))
        lo = hi // 4 if hi > 16 * 1024 else 0
        while hi - lo > 16:
            mid = (lo + hi) // 2 // 16 * 16
            if mid <= lo:
                break
            reply = worker.request("probe", mid)
            if reply.get("hung"):  # a hang is no answer about the size: the model cannot be measured
                return TflmArena(False, None, _reason_from(reply), crashed=True)
            if reply["ok"]:
                hi = mid
            else:
                lo = mid
        detail = tensor_detail(model)
        np.save(worker.path("zeros.npy"), np.zeros(detail["shape"], detail["dtype"]))
        reply = worker.request("run", hi, worker.path("zeros.npy"), worker.path("out.npy"), "allocations")
        if not reply["ok"]:
            return TflmArena(False, None, f"allocates in {hi} bytes but fails to run: {_reason_from(reply)}",
                             crashed=bool(reply.get("crashed")))
        split = {part: re.search(rf"allocation {part} (\d+) bytes", reply.get("log", ""))
                 for part in ("head", "tail")}
    return TflmArena(True, hi, head_bytes=int(split["head"].group(1)) if split["head"] else None,
                     tail_bytes=int(split["tail"].group(1)) if split["tail"] else None)


def tflm_predict(model: bytes, x: np.ndarray, arena_bytes: int) -> np.ndarray:
    """Class scores from the TFLite Micro interpreter, one sample at a time as on a device."""
    detail = tensor_detail(model)
    with TflmWorker(model) as worker:
        np.save(worker.path("x.npy"), quantize_input(x, detail))
        reply = worker.request("run", arena_bytes, worker.path("x.npy"), worker.path("y.npy"),
                               timeout_s=TIMEOUT_S + TIMEOUT_PER_SAMPLE_S * len(x))
        if not reply["ok"]:
            raise CandidateFailed("tflm", _reason_from(reply))
        return dequantize_output(np.load(worker.path("y.npy"), allow_pickle=False), tensor_detail(model, output=True))
