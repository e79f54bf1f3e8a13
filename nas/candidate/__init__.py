"""One candidate end to end: train (and prune) a spec, convert it, measure the converted model.

    TrainConfig, train_candidate, fit_epochs, prune_to, subset     training with tf-keras and tfmot (`_train`)
    convert, REPRESENTATIVE_SAMPLES                                 Keras model -> .tflite bytes per mode (`_convert`)
    evaluate_candidate, evaluate_modes, CandidateResult, ...        the one-candidate pipeline (`_pipeline`)

TensorFlow is imported by the functions that train or convert, not by this package.
"""

from ._convert import REPRESENTATIVE_SAMPLES, convert
from ._pipeline import TFLM_MODES, CandidateResult, accuracy_of, evaluate_candidate, evaluate_modes, measure_tflite
from ._train import TrainConfig, TrainResult, fit_epochs, prune_to, subset, train_candidate, weight_sparsity

__all__ = ["REPRESENTATIVE_SAMPLES", "convert", "TFLM_MODES", "CandidateResult", "accuracy_of", "evaluate_candidate",
           "evaluate_modes", "measure_tflite", "TrainConfig", "TrainResult", "fit_epochs", "prune_to", "subset",
           "train_candidate", "weight_sparsity"]
