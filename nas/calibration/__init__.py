"""Calibrating the latency models `nas.latency` predicts with: building models, measuring them,
fitting and validating, writing the artifacts (`nas calibrate`).

    make_samples, settle, Sample                        calibration samples (`_sampling`)
    make_op_samples, OP_BUILDERS, build_op_model        ... generated around every operator deployed models use
                                                        (`_op_samples`, its builders in `_op_builders`, `_seq_builders`
                                                        and `_builder_parts`)
    fit_mode, fit_regressor, score, nnls, REGRESSORS    fitting and scoring the kernel-sum regressors (`_regress`)
    fit_arena_model, extend_tail                        fitting the TFLite Micro arena model (`_arena`)
    calibrate_host, host_artifact, measure_samples      fitting and validating host devices (`_fitting`)
    held_out_split, provenance, write_artifact, ...     ... the held-out split, what an artifact records, writing it
    stand_in_spread                                     how far a stand-in's price strays (on the calibration)
    extend_arena, extend_kernels                        a fit extended to what it never saw
    calibrate_boards, device_profile, ...               fitting the microcontroller board catalog (`_mcu`)
    base_device, counted_class_instructions             ... each board's base build, and the Arm counts per kernel class
    HOST_SHAPED, HOST_BASE                              ... the runtimes priced from the host's instructions instead, and that base
    board_profiles, BoardProfile, board_rows            ... its profiles, from the MLPerf Tiny results (`_boards`)
    fit_joint                                           ... and its joint latency model (`_board_fit`)
    REFERENCE_MODELS, build_reference                   the MLPerf Tiny reference architectures (`_reference_models`)

Nothing here imports TensorFlow at import time; calibration imports it when it builds models.
"""

from ._regress import REGRESSORS, fit_mode, fit_regressor, nnls, score
from ._arena import extend_tail, fit_arena_model
from ._sampling import Sample, make_samples, settle
from ._op_samples import OP_BUILDERS, build_op_model, make_op_samples, op_sample_stem
from ._fitting import (HELD_OUT_FRACTION, calibrate_host, extend_arena, extend_kernels, held_out_split, host_artifact,
                       measure_samples, provenance, sample_records, stand_in_spread, write_artifact)
from ._boards import BoardProfile, board_profiles, board_rows
from ._board_fit import fit_joint
from ._mcu import (HOST_BASE, HOST_SHAPED, base_device, calibrate_boards, counted_class_instructions, device_profile, reference_class_instructions,
                   reference_tflites)
from ._reference_models import REFERENCE_MODELS, build_reference

__all__ = ["REGRESSORS", "fit_mode", "fit_regressor", "nnls", "score", "extend_tail", "fit_arena_model", "Sample",
           "make_samples", "settle", "OP_BUILDERS", "build_op_model", "make_op_samples", "op_sample_stem",
           "HELD_OUT_FRACTION", "calibrate_host", "extend_arena", "extend_kernels", "held_out_split", "host_artifact",
           "measure_samples", "provenance", "sample_records", "stand_in_spread", "write_artifact", "BoardProfile",
           "board_profiles", "board_rows", "fit_joint", "calibrate_boards", "device_profile",
           "reference_class_instructions", "reference_tflites", "counted_class_instructions", "base_device", "HOST_SHAPED", "HOST_BASE",
           "REFERENCE_MODELS", "build_reference"]
