"""One candidate end to end: train (and prune) a spec, convert it, measure the converted model.

    TrainConfig, FINAL_DEFAULTS, train_candidate, fit_epochs, ...  the training recipe with tf-keras and tfmot (`_train`)
    convert, REPRESENTATIVE_SAMPLES, IO_TYPES                       Keras model -> .tflite bytes per mode (`_convert`)
    evaluate_candidate, evaluate_modes, CandidateResult, ...        the one-candidate pipeline (`_pipeline`)

TensorFlow is imported by the functions that train or convert, not by this package.
"""

from ._convert import IO_TYPES, REPRESENTATIVE_SAMPLES, convert
from ._pipeline import (SPARSE_ENCODED_MODES, TFLM_MODES, CandidateResult, accuracy_of, evaluate_candidate, evaluate_modes,
                        measure_tflite, sparse_encoded)
from ._train import (FINAL_DEFAULTS, QAT_MODES, SCHEDULES, TrainConfig, TrainingData, TrainResult, batches, compile_for,
                     fit_epochs, global_random_state_kept, initialize, learning_rate, make_loss, prune_to, sample_weights,
                     soft_targets, subset, subset_indices, targets, train_candidate, weight_sparsity)

__all__ = ["IO_TYPES", "REPRESENTATIVE_SAMPLES", "convert", "SPARSE_ENCODED_MODES", "TFLM_MODES", "CandidateResult", "accuracy_of",
           "evaluate_candidate", "evaluate_modes", "measure_tflite", "sparse_encoded", "TrainConfig", "TrainResult",
           "FINAL_DEFAULTS", "QAT_MODES", "SCHEDULES", "TrainingData", "compile_for", "learning_rate", "make_loss", "sample_weights",
           "soft_targets", "subset_indices", "targets", "batches", "fit_epochs", "global_random_state_kept", "initialize", "prune_to", "subset", "train_candidate", "weight_sparsity"]
