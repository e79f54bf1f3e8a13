"""Measuring converted models for real on this host.

    litert_predict, host_latency_ms, ...        LiteRT: class scores, single-sample latency (`_litert`)
    tflm_arena, tflm_predict, TflmWorker        the TFLite Micro interpreter, in a child process (`_tflm`)
    measure_wallclock, repeatability            the robust interleaved wall-clock protocol (`_timing`)
    count_instructions, require_valgrind        instructions per inference under callgrind (`_icount`)
    invokes                                     ... and whether a runtime runs a model at all
    arm_measure, arm_count, ArmCount, ...       instructions per inference and per operator on the Arm
                                                build under QEMU, outputs against the host's, the firmware (`_arm`)

Nothing here imports TensorFlow; LiteRT and TFLite Micro are imported by the functions that run them.
"""

from ._arm import ArmCount, ArmMeasurement, OperatorCount, arm_count, arm_measure, golden_input, HostTflm
from ._icount import INVOKE_FUNCTIONS, Count, count_instructions, invokes, require_valgrind
from ._litert import (dequantize_output, host_latency_ms, litert_predict, median_invoke_ms, one_line, quantize_input,
                      tensor_detail, warm_invoke)
from ._timing import Wallclock, measure_wallclock, repeatability
from ._tflm import TflmArena, TflmWorker, tflm_arena, tflm_predict

__all__ = ["ArmCount", "ArmMeasurement", "OperatorCount", "arm_count", "arm_measure", "golden_input", "HostTflm",
           "INVOKE_FUNCTIONS", "Count", "count_instructions", "invokes", "require_valgrind", "dequantize_output",
           "host_latency_ms", "litert_predict", "median_invoke_ms", "one_line", "quantize_input", "tensor_detail",
           "warm_invoke", "Wallclock", "measure_wallclock", "repeatability", "TflmArena", "TflmWorker", "tflm_arena",
           "tflm_predict"]
