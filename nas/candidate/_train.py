"""Training and pruning of one candidate (tf-keras + tensorflow-model-optimization)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np

from .. import interrupt
from ..errors import CandidateFailed, ConfigError

__all__ = ["TrainConfig", "TrainResult", "train_candidate", "fit_epochs", "prune_to", "subset", "weight_sparsity",
           "initialize", "batches", "global_random_state_kept"]


@dataclass(frozen=True)
class TrainConfig:
    """How long and on how much data a candidate trains (a short proxy by default)."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 3e-3
    max_train_samples: int | None = None  # a stratified-enough random subset for proxy training
    patience: int = 3  # early stopping on validation accuracy
    prune_epochs: int = 2  # fine-tuning epochs while pruning to the spec's sparsity
    seed: int = 0

    def __post_init__(self) -> None:
        for name, lo in (("epochs", 1), ("batch_size", 1), ("patience", 1), ("prune_epochs", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ConfigError(f"training.{name}: expected an integer >= {lo}, got {value!r}")
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate < 10:
            raise ConfigError(f"training.learning_rate: expected a number in (0, 10), got {self.learning_rate!r}")
        if self.max_train_samples is not None and (not isinstance(self.max_train_samples, int) or self.max_train_samples < 10):
            raise ConfigError(f"training.max_train_samples: expected an integer >= 10 or null, got {self.max_train_samples!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "training") -> "TrainConfig":
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    model: Any  # stripped tf-keras model, ready to convert
    epochs_run: int
    float_accuracy: float  # validation accuracy of the Keras model after pruning
    weight_sparsity: float  # measured share of zero weights in conv/dense kernels


def subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `n` samples, drawn at random (seeded) and kept in their original order."""
    if n is None or n >= len(y):
        return x, y
    idx = np.sort(np.random.default_rng(seed).permutation(len(y))[:n])
    return x[idx], y[idx]


@contextlib.contextmanager
def global_random_state_kept():
    """Restore Python's and NumPy's global random state after the block: for third-party code
    (Keras applications) that draws from them and takes no seed."""
    import random

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def initialize(model, seed: int) -> None:
    """Draw every kernel of `model` afresh, Glorot-uniform as Keras does, from a generator seeded
    with `seed`: the same seed gives the same initial model, and no global random state (Python's,
    NumPy's, TensorFlow's) is read or changed. Biases and batch-norm parameters keep their
    constant initial values."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for weight in layer.weights:
            if weight.name.rsplit("/", 1)[-1].split(":")[0] not in ("kernel", "depthwise_kernel"):
                continue
            shape = tuple(int(d) for d in weight.shape)
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = math.sqrt(6.0 / max(1, fan_in + fan_out))
            weight.assign(rng.uniform(-limit, limit, shape).astype(np.float32))


def batches(x, y, batch_size: int, seed: int):
    """(x, y) as a tf.data pipeline reshuffled every epoch by a seeded shuffle (an operation-level
    seed: deterministic without setting TensorFlow's global seed)."""
    from ..backend import tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    return data.shuffle(len(y), seed=seed, reshuffle_each_iteration=True).batch(batch_size).prefetch(2)


def fit_epochs(model, x, y, x_val, y_val, epochs, cfg: TrainConfig, class_weight, callbacks) -> int:
    """Fit a compiled model for up to `epochs`; the epochs run. Out of memory or a loss that is no
    longer finite fails the candidate (CandidateFailed) instead of returning garbage."""
    from ..backend import keras, tf

    nan_guard = keras.callbacks.TerminateOnNaN()
    ctrl_c = keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: interrupt.check())
    try:
        history = model.fit(
            batches(x, y, cfg.batch_size, cfg.seed), epochs=epochs, validation_data=(x_val, y_val),
            class_weight=class_weight, callbacks=[nan_guard, ctrl_c, *callbacks], verbose=0,
        )
    except tf.errors.ResourceExhaustedError as exc:
        raise CandidateFailed("training", f"out of memory: {str(exc).splitlines()[0][:200]}") from None
    losses = history.history.get("loss", [])
    if not losses or not all(math.isfinite(v) for v in losses):
        raise CandidateFailed("training", "loss became NaN or infinite")
    return len(losses)


def train_candidate(spec, x_train, y_train, x_val, y_val, num_classes: int, cfg: TrainConfig, class_weight=None) -> TrainResult:
    """Train `spec` on prepared float inputs, prune it to `spec.sparsity`, strip the wrappers."""
    from ..backend import keras
    from ..spec import build_model

    # No keras.backend.clear_session() and no global seeds: a library call must not wipe its
    # caller's Keras session or random state (and clearing freed no memory here, measured).
    x, y = subset(x_train, y_train, cfg.max_train_samples, cfg.seed)
    model = build_model(spec, x.shape[-1], num_classes, seed=cfg.seed)
    initialize(model, cfg.seed)
    model.compile(keras.optimizers.Adam(cfg.learning_rate), "sparse_categorical_crossentropy", ["accuracy"])
    stop = keras.callbacks.EarlyStopping("val_accuracy", patience=cfg.patience, restore_best_weights=True)
    epochs_run = fit_epochs(model, x, y, x_val, y_val, cfg.epochs, cfg, class_weight, [stop])
    if spec.sparsity > 0:
        model = prune_to(model, spec.sparsity, x, y, x_val, y_val, cfg, class_weight)
        epochs_run += cfg.prune_epochs
    _, accuracy = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
    return TrainResult(model, epochs_run, float(accuracy), weight_sparsity(model))


def prune_to(model, sparsity: float, x, y, x_val, y_val, cfg: TrainConfig, class_weight):
    """Fine-tune `model` under magnitude pruning up to `sparsity`; the stripped, compiled result.
    tfmot wraps the model's own layers: pass a clone if the original must stay dense."""
    import tensorflow_model_optimization as tfmot

    from ..backend import keras

    steps = cfg.prune_epochs * max(1, math.ceil(len(y) / cfg.batch_size))
    # Reach the target at 3/4 of fine-tuning, so the last quarter recovers accuracy at the
    # final sparsity; masks update often enough that the final step is always one of them.
    end = max(1, (3 * steps) // 4)
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, sparsity, begin_step=0, end_step=end, frequency=max(1, end // 10))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(keras.optimizers.Adam(cfg.learning_rate / 3), "sparse_categorical_crossentropy", ["accuracy"])
    fit_epochs(pruned, x, y, x_val, y_val, cfg.prune_epochs, cfg, class_weight, [tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    stripped.compile(keras.optimizers.Adam(cfg.learning_rate), "sparse_categorical_crossentropy", ["accuracy"])
    return stripped


def weight_sparsity(model) -> float:
    """Share of exactly-zero values among conv, depthwise and dense kernels."""
    zeros = total = 0
    for layer in model.layers:
        for weight in layer.weights:
            if "kernel" in weight.name:
                values = weight.numpy()
                zeros += int((values == 0).sum())
                total += values.size
    return zeros / total if total else 0.0
