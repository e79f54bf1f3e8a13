"""Keras model -> TFLite flatbuffer bytes, one function per deployment mode."""

from __future__ import annotations

import numpy as np

from ..errors import CandidateFailed, UnknownNameError
from ..logs import stderr_to_log
from ..spec import QUANT_MODES

__all__ = ["convert", "REPRESENTATIVE_SAMPLES"]

REPRESENTATIVE_SAMPLES = 100  # calibration cost is linear in it; 100 keeps int8 within 1-2 points


def convert(model, mode: str, representative: np.ndarray | None = None, *, sparse: bool = False) -> bytes:
    """Convert `model` to TFLite in `mode`.

    `sparse=True` adds the converter's experimental sparse weight encoding (for pruned models).
    Full-integer modes calibrate on `representative` (prepared training images, float in
    [0, 1]) and take integer inputs and outputs; the input scale and zero point map the
    [0, 1] range exactly, which is what keeps int8 accuracy from collapsing.
    """
    if mode not in QUANT_MODES:
        raise UnknownNameError("quantization mode", mode, QUANT_MODES)
    from ..backend import tf

    # A concrete function converted without the SavedModel detour that from_keras_model takes
    # is ~10x faster (0.3 s against 3-5 s for a tiny model) and gives the same operators.
    # inference mode: batch norm uses its moving statistics, dropout is off.
    signature = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="image")
    function = tf.function(lambda image: model(image, training=False)).get_concrete_function(signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.experimental_lower_to_saved_model = False
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if sparse:  # encode pruned weights sparsely (the study's "experimental sparsity" column)
        converter.optimizations = [*converter.optimizations, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "int16x8"):
        if representative is None or len(representative) == 0:
            raise CandidateFailed("conversion", f"{mode} needs representative data")
        samples = representative[:REPRESENTATIVE_SAMPLES].astype(np.float32)
        converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
        if mode == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            converter.inference_input_type = converter.inference_output_type = tf.int16
    try:
        with stderr_to_log("nas.convert"):  # the converter's C++ notices: to the log, not the terminal
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises many unrelated types; all mean this mode failed
        message = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise CandidateFailed("conversion", f"{mode}: {message}") from None
