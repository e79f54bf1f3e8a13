"""Pricing a model on a device before (or without) running it there.

    load_device, device_names, Device, Prediction       device profiles and typed predictions (`_devices`)
    energy_errors, new_model_error                      a board's energy error for a latency error, its error for a new model
    candidate_error                                     ... that error for a search candidate, through the board's base device
    host_cpu                                            the CPU a wall-clock latency model must be fitted on
    kernels_from_tflite, kernels_from_spec, Kernel      a model as the kernels its runtime executes (`_kernels`)
    features, feature_set, xnnpack_features             what the cost models are fitted on (`_features`)
    read_tflite, parse_tflite, Graph, ...               the .tflite flatbuffer reader (`_flatbuffer`)
    KernelCostModel, row_macs                           a fitted kernel-sum cost model, evaluated (`_regress`)
    planned_head_bytes, predict_arena, ...              the TFLite Micro arena model (`_arena`)
    stand_in, with_stand_ins, TFLM_BUILTINS             operators outside the calibration, priced by the nearest kernel (`_stand_ins`)
    cannot_run, TFLM_NO_KERNEL_FOR, ...                 what a runtime cannot run, read from the file (`_runtimes`)
    CATALOG_ARTIFACT, APP_RESERVE                       the microcontroller board catalog, as a prediction reads it (`_mcu`)
    KERNEL_CLASSES, kernel_class, class_instructions    ... the kernel classes a board prices, split from its core's Arm model
    coef_digest                                         ... and the digest of the model a catalog was fitted on
    runs_on, board_devices, board_budget_kb             where a model fits and what it costs on each board (`_runs_on`)

Fitting what these predictions read (samples, measurements, regressors, the board catalog) is
`nas.calibration`'s. Nothing here imports TensorFlow.
"""

from ._arena import (ALIGNMENT, Buffer, arena_features, liveness_bytes, planned_head_bytes, predict_arena, tail_terms,
                     tail_value, tflm_buffers)
from ._devices import (Device, Prediction, artifact_path, calibration_score, candidate_error, device_names, host_cpu,
                       load_artifact, load_device)
from ._features import cmsisnn_kernel, cmsisnn_kernels, feature_set, features, kernel_features, xnnpack_features
from ._flatbuffer import DTYPE_BYTES, Graph, enum_names, parse_tflite, read_tflite
from ._kernels import (BINARY_OPS, HYBRID_MIN_WEIGHTS, TFLM_BUILTINS, Kernel, family_features, inside_taps,
                       kernels_from_spec, kernels_from_tflite, model_mode)
from ._stand_ins import ESTIMATE_SPREAD, stand_in, stand_in_key, with_stand_ins
from ._runtimes import LITERT_NO_KERNEL_FOR, TFLM_NO_KERNEL_FOR, TFLM_TRANSPOSE_MAX_RANK, cannot_run, rescales
from ._mcu import (APP_RESERVE, CATALOG_ARTIFACT, KERNEL_CLASSES, MAIN_CLASSES, class_instructions, coef_digest, energy_errors,
                   kernel_class, new_model_error)
from ._runs_on import board_budget_kb, board_devices, runs_on
from ._regress import KernelCostModel, row_macs

__all__ = ["ALIGNMENT", "Buffer", "arena_features", "liveness_bytes", "planned_head_bytes", "predict_arena", "tail_terms",
           "tail_value", "tflm_buffers", "Device", "Prediction", "energy_errors", "artifact_path", "calibration_score", "candidate_error",
           "device_names", "host_cpu", "load_artifact", "load_device", "feature_set", "features", "xnnpack_features", "cmsisnn_kernel", "cmsisnn_kernels",
           "stand_in_key", "family_features", "DTYPE_BYTES", "Graph", "enum_names", "parse_tflite", "read_tflite",
           "HYBRID_MIN_WEIGHTS", "Kernel", "inside_taps", "kernels_from_spec", "kernels_from_tflite", "model_mode",
           "KERNEL_CLASSES", "MAIN_CLASSES", "class_instructions", "kernel_class", "new_model_error", "coef_digest", "APP_RESERVE", "CATALOG_ARTIFACT",
           "board_budget_kb", "board_devices", "runs_on", "KernelCostModel", "row_macs", "ESTIMATE_SPREAD",
           "with_stand_ins", "BINARY_OPS", "TFLM_BUILTINS", "stand_in", "kernel_features", "cannot_run", "rescales",
           "TFLM_NO_KERNEL_FOR", "LITERT_NO_KERNEL_FOR", "TFLM_TRANSPOSE_MAX_RANK"]
