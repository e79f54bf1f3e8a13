"""A child process that runs the TFLite Micro interpreter for its parent.

TFLite Micro's Python wrapper segfaults, rather than failing, for some arena sizes that are too
small (seen with tflite-micro 0.dev20261023 at 5,000 bytes for many models), and a segfault
would take a whole search with it. So the interpreter only ever runs here; the parent restarts
this process when it dies and counts the request as failed.

Protocol: one command a line on stdin, one JSON object a line on stdout.
    probe ARENA                  -> {"ok": bool, "log": str}   builds (allocates) an interpreter
    details ARENA                -> ... and "input", "output": {"shape": [...], "dtype": "int8", "scale":
                                    float or None, "zero_point": int or None} of the first input and output tensor
    run ARENA INPUT.npy OUT.npy [allocations]
                                 -> {"ok": bool, "log": str}   invokes once per sample; with
                                    "allocations", the log then holds print_allocations()
"""

from __future__ import annotations

import json
import os
import sys


def main(model_path: str) -> int:
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    from ..logs import captured_stderr

    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the runtime prints must not corrupt the protocol
    with open(model_path, "rb") as fh:
        model = fh.read()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        reply = {"ok": False, "log": ""}
        with captured_stderr() as log:
            try:
                interpreter = runtime.Interpreter.from_bytes(model, arena_size=int(words[1]))
                if words[0] == "details":
                    for key, detail in (("input", interpreter.get_input_details(0)), ("output", interpreter.get_output_details(0))):
                        quant = detail.get("quantization_parameters") or {}
                        scales, zeros = list(quant.get("scales", [])), list(quant.get("zero_points", []))
                        reply[key] = {"shape": [int(v) for v in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
                                      "scale": float(scales[0]) if scales else None,
                                      "zero_point": int(zeros[0]) if scales and zeros else None}
                if words[0] == "run":
                    x = np.load(words[2], allow_pickle=False)
                    outputs = []
                    for sample in x:
                        interpreter.set_input(sample[None], 0)
                        interpreter.invoke()
                        outputs.append(np.array(interpreter.get_output(0)).reshape(-1))
                    np.save(words[3], np.stack(outputs))
                    if words[4:] == ["allocations"]:  # after the run, so a failure's log is the failure's
                        interpreter.print_allocations()
                reply["ok"] = True
            except Exception as exc:  # the wrapper raises RuntimeError/ValueError
                reply["error"] = " ".join(str(exc).split())[:300]
        reply["log"] = log[0][-4000:]
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
