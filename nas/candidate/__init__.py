"""One candidate end to end: train (and prune) a spec, convert it, measure the converted model.

    TrainConfig, train_candidate, fit_epochs, prune_to, subset     training with tf-keras and tfmot (`_train`)
    convert, REPRESENTATIVE_SAMPLES                                 Keras model -> .tflite bytes per mode (`_convert`)
    evaluate_candidate, evaluate_modes, CandidateResult, ...        the one-candidate pipeline (`_pipeline`)

TensorFlow is imported by the functions that train or convert, not by this package.
"""

from ._convert import REPRESENTATIVE_SAMPLES, convert
from ._pipeline import (SPARSE_ENCODED_MODES, TFLM_MODES, CandidateResult, accuracy_of, evaluate_candidate, evaluate_modes,
                        measure_tflite, sparse_encoded)
from ._train import (TrainConfig, TrainResult, batches, fit_epochs, global_random_state_kept, initialize, prune_to,
                     subset, train_candidate, weight_sparsity)

__all__ = ["REPRESENTATIVE_SAMPLES", "convert", "SPARSE_ENCODED_MODES", "TFLM_MODES", "CandidateResult", "accuracy_of",
           "evaluate_candidate", "evaluate_modes", "measure_tflite", "sparse_encoded", "TrainConfig", "TrainResult",
           "batches", "fit_epochs", "global_random_state_kept", "initialize", "prune_to", "subset", "train_candidate", "weight_sparsity"]
