"""Runs .tflite models under valgrind for `nas.measure.count_instructions`: imports only numpy and one runtime, so the
instructions counted are the runtime's and nothing else's.

    python nas/measure/_icount_runner.py litert|tflm STATUS_FILE MODEL.tflite [...]

For each model: load, allocate, zero input, invoke twice (callgrind dumps once per invoke; the
parent keeps the second, warm one). A line per model goes to STATUS_FILE: "ok I" or "fail I
reason". On a failure the process exits, so the parent can map dumps to models exactly and
restart after the failed model; a crash (TFLite Micro aborts on some models) leaves no line.
"""

from __future__ import annotations

import os
import sys

INVOKES = 2
#: The exit status after a failed invoke, its "fail" line written: the next model was never tried.
INVOKE_FAILED = 3


def _litert(data: bytes):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    return interpreter.invoke


def _tflm(data: bytes, arena: int):
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena)
    detail = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
    return interpreter.invoke


def main(argv: list[str]) -> int:
    runtime, status_path, *paths = argv
    arena = int(os.environ.get("NAS_ICOUNT_ARENA", str(32 << 20)))
    with open(status_path, "a") as status:
        for i, path in enumerate(paths):
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
                invoke = _litert(data) if runtime == "litert" else _tflm(data, arena)
            except Exception as exc:  # not loadable or not allocatable: no invoke, no dump
                status.write(f"fail {i} {' '.join(str(exc).split())[:200] or type(exc).__name__}\n")
                status.flush()
                continue
            try:
                for _ in range(INVOKES):
                    invoke()
            except Exception as exc:  # dumps of a failed invoke cannot be told apart: start afresh
                status.write(f"fail {i} invoke: {' '.join(str(exc).split())[:200]}\n")
                status.flush()
                os._exit(INVOKE_FAILED)
            status.write(f"ok {i}\n")
            status.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
