"""Keras model -> TFLite flatbuffer bytes, one function per deployment mode."""

from __future__ import annotations

import numpy as np

from ..errors import CandidateFailed, UnknownNameError
from ..logs import stderr_to_log
from ..spec import QUANT_MODES

__all__ = ["convert", "REPRESENTATIVE_SAMPLES", "IO_TYPES"]

REPRESENTATIVE_SAMPLES = 100  # calibration cost is linear in it; 100 keeps int8 within 1-2 points


#: Input/output types a full-int8 model can take: integer (the default), float behind QUANTIZE and
#: DEQUANTIZE operators, or uint8 (requantized to int8 inside), as deployed model-zoo files do.
IO_TYPES = ("int8", "float32", "uint8")


def convert(model, mode: str, representative: np.ndarray | list[np.ndarray] | None = None, *, sparse: bool = False,
            io_type: str = "int8", batch_size: int | None = None) -> bytes:
    """Convert `model` to TFLite in `mode`.

    `sparse=True` adds the converter's experimental sparse weight encoding (for pruned models).
    Full-integer modes calibrate on `representative` (prepared training images, float in
    [0, 1]; one array per input for a model with several) and take integer inputs and outputs
    (`io_type` "float32" or "uint8" for int8 models that take those); the input scale and zero
    point map the [0, 1] range exactly, which is what keeps int8 accuracy from collapsing.
    `batch_size=1` fixes the batch as deployed files do (no shape arithmetic around reshapes).
    """
    if mode not in QUANT_MODES:
        raise UnknownNameError("quantization mode", mode, QUANT_MODES)
    if io_type not in IO_TYPES:
        raise UnknownNameError("input/output type", io_type, IO_TYPES)
    from ..backend import tf

    # A concrete function converted without the SavedModel detour that from_keras_model takes
    # is ~10x faster (0.3 s against 3-5 s for a tiny model) and gives the same operators.
    # inference mode: batch norm uses its moving statistics, dropout is off.
    several = isinstance(model.input_shape, list)
    shapes = model.input_shape if several else [model.input_shape]
    signature = [tf.TensorSpec([batch_size, *shape[1:]], tf.float32, name=f"input_{i}" if several else "image")
                 for i, shape in enumerate(shapes)]
    if several:
        function = tf.function(lambda *xs: model(list(xs), training=False)).get_concrete_function(*signature)
    else:
        function = tf.function(lambda image: model(image, training=False)).get_concrete_function(*signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.experimental_lower_to_saved_model = False
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if sparse:  # encode pruned weights sparsely (the study's "experimental sparsity" column)
        converter.optimizations = [*converter.optimizations, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "int16x8"):
        arrays = list(representative) if isinstance(representative, (list, tuple)) else [representative]
        if representative is None or any(a is None or len(a) == 0 for a in arrays):
            raise CandidateFailed("conversion", f"{mode} needs representative data")
        arrays = [a[:REPRESENTATIVE_SAMPLES].astype(np.float32) for a in arrays]
        converter.representative_dataset = lambda: ([a[i][None] for a in arrays] for i in range(len(arrays[0])))
        if mode == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if io_type != "float32":
                converter.inference_input_type = converter.inference_output_type = getattr(tf, io_type)
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
