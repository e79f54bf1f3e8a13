"""Pricing a model on a device before (or without) running it there.

    load_device, device_names, Device, Prediction       device profiles and typed predictions (`_devices`)
    energy_errors                                       a board's energy error for a latency error
    kernels_from_tflite, kernels_from_spec, Kernel      a model as the kernels its runtime executes (`_kernels`)
    features, feature_set, xnnpack_features             what the cost models are fitted on (`_features`)
    read_tflite, parse_tflite, Graph, ...               the .tflite flatbuffer reader (`_flatbuffer`)
    KernelCostModel, fit_mode, score, nnls              the kernel-sum regressors (`_regress`)
    planned_head_bytes, predict_arena, ...              the TFLite Micro arena model (`_arena`)
    make_samples, settle                                calibration samples (`_sampling`)
    make_op_samples, OP_BUILDERS, build_op_model        ... generated around every operator deployed models use
                                                        (`_op_samples`, its builders in `_op_builders`)
    stand_in, with_stand_ins, TFLM_BUILTINS             operators outside the calibration, priced by the nearest kernel (`_stand_ins`)
    stand_in_spread, stand_in_key                       ... and how far such a price strays (on the calibration)
    cannot_run, TFLM_NO_KERNEL_FOR, ...                 what a runtime cannot run, read from the file (`_runtimes`)
    calibrate_host, host_artifact, ...                  fitting and validating host devices (`_fitting`)
    calibrate_boards, CATALOG_ARTIFACT, APP_RESERVE     the microcontroller board catalog (`_mcu`, `_boards`, `_board_fit`)
    board_profiles, fit_joint, class_instructions       its profiles and joint latency model
    runs_on, board_devices, board_budget_kb             where a model fits and what it costs on each board
    REFERENCE_MODELS, build_reference                   the MLPerf Tiny reference architectures

Nothing here imports TensorFlow at import time; calibration imports it when it builds models.
"""

from ._arena import (ALIGNMENT, Buffer, arena_features, extend_tail, fit_arena_model, liveness_bytes, planned_head_bytes,
                     predict_arena,
                     tflm_buffers)
from ._devices import (Device, Prediction, artifact_path, calibration_score, device_names, energy_errors, load_artifact,
                       load_device)
from ._features import feature_set, features, kernel_features, xnnpack_features
from ._fitting import (HELD_OUT_FRACTION, calibrate_host, held_out_split, host_artifact, measure_samples, provenance,
                       extend_arena, extend_kernels, sample_records, stand_in_spread, write_artifact)
from ._flatbuffer import DTYPE_BYTES, Graph, enum_names, parse_tflite, read_tflite
from ._kernels import (BINARY_OPS, HYBRID_MIN_WEIGHTS, TFLM_BUILTINS, Kernel, family_features, inside_taps,
                       kernels_from_spec, kernels_from_tflite, model_mode)
from ._stand_ins import ESTIMATE_SPREAD, stand_in, stand_in_key, with_stand_ins
from ._runtimes import LITERT_NO_KERNEL_FOR, TFLM_NO_KERNEL_FOR, TFLM_TRANSPOSE_MAX_RANK, cannot_run, rescales
from ._board_fit import KERNEL_CLASSES, class_instructions, fit_joint
from ._boards import BoardProfile, board_profiles, board_rows
from ._mcu import APP_RESERVE, CATALOG_ARTIFACT, calibrate_boards, device_profile, reference_class_instructions
from ._runs_on import board_budget_kb, board_devices, runs_on
from ._reference_models import REFERENCE_MODELS, build_reference
from ._regress import REGRESSORS, KernelCostModel, fit_mode, fit_regressor, nnls, score
from ._sampling import Sample, make_samples, settle
from ._op_samples import OP_BUILDERS, build_op_model, make_op_samples, op_sample_stem

__all__ = ["ALIGNMENT", "Buffer", "arena_features", "fit_arena_model", "liveness_bytes", "planned_head_bytes",
           "predict_arena", "tflm_buffers", "Device", "Prediction", "energy_errors", "artifact_path", "calibration_score", "device_names",
           "load_artifact", "load_device", "feature_set", "features", "xnnpack_features", "HELD_OUT_FRACTION",
           "calibrate_host", "held_out_split", "host_artifact", "measure_samples", "provenance", "write_artifact",
           "stand_in_spread", "stand_in_key", "family_features", "extend_arena", "extend_kernels", "extend_tail", "sample_records",
           "DTYPE_BYTES", "Graph", "enum_names", "parse_tflite", "read_tflite",
           "HYBRID_MIN_WEIGHTS", "Kernel", "inside_taps", "kernels_from_spec", "kernels_from_tflite", "model_mode",
           "KERNEL_CLASSES", "class_instructions", "fit_joint", "BoardProfile", "board_profiles", "board_rows",
           "APP_RESERVE", "CATALOG_ARTIFACT", "calibrate_boards", "device_profile", "reference_class_instructions", "board_budget_kb", "board_devices", "runs_on", "REFERENCE_MODELS", "build_reference", "REGRESSORS", "KernelCostModel",
           "fit_mode", "fit_regressor", "nnls", "score", "Sample", "make_samples", "settle", "OP_BUILDERS", "build_op_model", "op_sample_stem",
           "make_op_samples", "ESTIMATE_SPREAD", "with_stand_ins", "BINARY_OPS", "TFLM_BUILTINS", "stand_in", "kernel_features",
           "cannot_run", "rescales", "TFLM_NO_KERNEL_FOR", "LITERT_NO_KERNEL_FOR", "TFLM_TRANSPOSE_MAX_RANK"]
