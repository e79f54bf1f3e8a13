"""What every builder of generated calibration models shares (`_op_builders`, `_seq_builders`):
Keras and its layers, imported when a model is built, and an image shape drawn from `rng`."""

from __future__ import annotations


def _L():
    from ..backend import keras

    return keras, keras.layers


def _image(rng, min_size: int = 4, max_size: int = 40, channels=(1, 3, 8, 16, 24, 32, 64)):
    h = int(rng.integers(min_size, max_size + 1))
    w = h if rng.random() < 0.7 else int(rng.integers(min_size, max_size + 1))
    return (h, w, int(rng.choice(channels)))
