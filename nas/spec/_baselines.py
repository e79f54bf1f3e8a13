"""The study's hand-picked baseline models (a small custom CNN, VGG16, MobileNet), as Keras
builders: used by `nas baselines` (nas.outputs) and as a distillation teacher (nas.search), so
they live below both."""

from __future__ import annotations

from pathlib import Path

from ..errors import UnknownNameError

__all__ = ["BASELINE_MODELS", "build_baseline", "study_input_size"]

BASELINE_MODELS = ("custom", "vgg16", "mobilenet")
#: The study's input sizes, by (dataset, model); other datasets use DEFAULT_INPUT.
STUDY_INPUTS = {("fashion_mnist", "custom"): 28, ("fashion_mnist", "vgg16"): 32, ("fashion_mnist", "mobilenet"): 96,
                ("pneumonia", "custom"): 150, ("pneumonia", "vgg16"): 224, ("pneumonia", "mobilenet"): 224,
                ("skin_lesion", "custom"): 224, ("skin_lesion", "vgg16"): 224, ("skin_lesion", "mobilenet"): 224}
DEFAULT_INPUT = {"custom": 28, "vgg16": 32, "mobilenet": 32}
MIN_INPUT = {"custom": 8, "vgg16": 32, "mobilenet": 32}  # Keras applications need at least 32 px


def study_input_size(dataset: str, model: str, scale: float = 1.0) -> int:
    size = STUDY_INPUTS.get((dataset, model), DEFAULT_INPUT[model])
    return max(MIN_INPUT[model], int(round(size * scale)))


def _application(name: str, dataset: str, size: int, channels: int, classes: int):
    """Keras application without its top, with a small classifier; ImageNet weights when cached."""
    from ..backend import keras

    L = keras.layers
    constructor = {"vgg16": keras.applications.VGG16,
                   "mobilenet": keras.applications.MobileNetV2 if dataset == "skin_lesion" else keras.applications.MobileNet}[name]
    weights = "imagenet" if channels == 3 and _imagenet_cached(constructor.__name__) else None
    base = constructor(include_top=False, weights=weights, input_shape=(size, size, channels), pooling="avg")
    x = L.Dense(classes, activation="softmax")(L.Dropout(0.2)(base.output))
    return keras.Model(base.input, x, name=name), weights or "none"


def _imagenet_cached(constructor: str) -> bool:
    folder = Path.home() / ".keras" / "models"
    stem = {"VGG16": "vgg16_weights", "MobileNet": "mobilenet_1_0", "MobileNetV2": "mobilenet_v2_weights"}[constructor]
    return folder.is_dir() and any(stem in p.name and "notop" in p.name for p in folder.iterdir())


def build_baseline(name: str, dataset: str, size: int, channels: int, classes: int):
    from ..backend import keras

    if name not in BASELINE_MODELS:
        raise UnknownNameError("baseline model", name, BASELINE_MODELS)
    if name != "custom":
        return _application(name, dataset, size, channels, classes)
    L = keras.layers
    inputs = keras.Input((size, size, channels))
    x = L.MaxPooling2D(2)(L.Conv2D(32, 3, padding="same", activation="relu")(inputs))
    x = L.MaxPooling2D(2)(L.Conv2D(64, 3, padding="same", activation="relu")(x))
    x = L.Dropout(0.3)(L.Dense(128, activation="relu")(L.Flatten()(x)))
    return keras.Model(inputs, L.Dense(classes, activation="softmax")(x), name="custom"), "none"


