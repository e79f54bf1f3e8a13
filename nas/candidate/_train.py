"""Training and pruning of one candidate (tf-keras + tensorflow-model-optimization)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

import numpy as np

from .. import interrupt
from ..errors import CandidateFailed, ConfigError

__all__ = ["TrainConfig", "FINAL_DEFAULTS", "SCHEDULES", "QAT_MODES", "TrainResult", "TrainingData", "targets", "soft_targets", "make_loss", "compile_for",
           "learning_rate", "sample_weights", "subset_indices", "train_candidate", "fit_epochs", "prune_to", "subset", "weight_sparsity",
           "initialize", "batches", "global_random_state_kept"]


SCHEDULES = ("constant", "cosine")
QAT_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class TrainConfig:
    """How a candidate trains. The class defaults are the cheap proxy recipe (constant rate, no
    augmentation, no QAT, no teacher); a study's `final` defaults (`FINAL_DEFAULTS`) turn the full
    recipe on."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 3e-3
    max_train_samples: int | None = None  # a stratified-enough random subset for proxy training
    patience: int = 3  # early stopping on validation accuracy
    prune_epochs: int = 2  # fine-tuning epochs while pruning to the spec's sparsity
    seed: int = 0
    schedule: str = "constant"  # "constant" | "cosine" (linear warm-up, then cosine decay to 0 over `epochs`)
    warmup_epochs: float = 0.0  # linear warm-up from 0 to `learning_rate` (cosine schedule only)
    label_smoothing: float = 0.0
    augment: bool = False  # the dataset's declared augmentation (nas.data.AUGMENTATIONS) on training batches
    qat: str = "off"  # int8 only: "on", "off", or "auto" (when PTQ loses more than `qat_threshold` points on validation)
    qat_threshold: float = 0.5  # points of validation accuracy
    qat_epochs: int = 3
    teacher: str = "none"  # "none" | "auto" | a baseline name | a path to a .keras model
    kd_temperature: float = 4.0
    kd_weight: float = 0.5  # weight of the hard-label loss; 1 - kd_weight goes to the teacher's soft targets

    def __post_init__(self) -> None:
        for name, lo in (("epochs", 1), ("batch_size", 1), ("patience", 1), ("prune_epochs", 1), ("qat_epochs", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ConfigError(f"training.{name}: expected an integer >= {lo}, got {value!r}")
        if not _number(self.learning_rate) or not 0 < self.learning_rate < 10:
            raise ConfigError(f"training.learning_rate: expected a number in (0, 10), got {self.learning_rate!r}")
        if self.max_train_samples is not None and (not isinstance(self.max_train_samples, int) or self.max_train_samples < 10):
            raise ConfigError(f"training.max_train_samples: expected an integer >= 10 or null, got {self.max_train_samples!r}")
        for name, choices in (("schedule", SCHEDULES), ("qat", QAT_MODES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"training.{name}: {getattr(self, name)!r} is not one of {list(choices)}")
        if not _number(self.warmup_epochs) or not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"training.warmup_epochs: expected a number in [0, epochs={self.epochs}), got {self.warmup_epochs!r}")
        if self.warmup_epochs > 0 and self.schedule == "constant":
            raise ConfigError("training.warmup_epochs: warm-up needs schedule: cosine (the constant schedule has none)")
        for name, lo, hi in (("label_smoothing", 0.0, 0.5), ("kd_weight", 0.0, 1.0), ("qat_threshold", 0.0, 100.0)):
            value = getattr(self, name)
            if not _number(value) or not lo <= value <= hi:
                raise ConfigError(f"training.{name}: expected a number in [{lo:g}, {hi:g}], got {value!r}")
        if not _number(self.kd_temperature) or not 1.0 <= self.kd_temperature <= 20.0:
            raise ConfigError(f"training.kd_temperature: expected a number in [1, 20], got {self.kd_temperature!r}")
        if not isinstance(self.augment, bool):
            raise ConfigError(f"training.augment: expected true or false, got {self.augment!r}")
        if not isinstance(self.teacher, str) or not self.teacher:
            raise ConfigError(f"training.teacher: expected 'none', 'auto', a baseline name or a .keras path, got {self.teacher!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "training", base: "TrainConfig | None" = None) -> "TrainConfig":
        """`data` merged onto `base` (the class defaults when None); unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {data!r}")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**{**(base.to_dict() if base is not None else {}), **data})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def distilled(self) -> bool:
        return self.teacher != "none"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: The final training's recipe (a study's `final:` keys merge onto it): warm-up and cosine decay,
#: label smoothing, the dataset's augmentation, QAT when PTQ loses accuracy. Distillation stays off
#: by default: the benchmark (benchmarks/README.md, final_training) found no gain on digits.
FINAL_DEFAULTS = TrainConfig(epochs=20, schedule="cosine", warmup_epochs=1.0, label_smoothing=0.1, augment=True,
                             qat="auto")


@dataclass(frozen=True)
class TrainResult:
    model: Any  # stripped tf-keras model, ready to convert
    epochs_run: int
    float_accuracy: float  # validation accuracy of the Keras model after pruning
    weight_sparsity: float  # measured share of zero weights in conv/dense kernels
    data: "TrainingData | None" = None  # what it trained on, for a fine-tuning stage (QAT) to go on with
    learning_curve: tuple[float, ...] = ()  # validation accuracy of the float model after each epoch
    halved_at: int | None = None  # the epoch at which `stop_rule` stopped the training


@dataclass(frozen=True)
class TrainingData:
    """The prepared training set a model was trained on: images, targets (one-hot, or with the
    teacher's soft targets), per-sample weights, augmentation; and the validation targets."""

    x: Any
    targets: Any
    sample_weight: Any
    augmentation: Any
    val_targets: Any


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


def batches(x, y, batch_size: int, seed: int, sample_weight=None, augmentation=None):
    """(x, y[, sample_weight]) as a tf.data pipeline reshuffled every epoch by a seeded shuffle (an
    operation-level seed: deterministic without setting TensorFlow's global seed). With an active
    `augmentation` (nas.data.Augmentation), every batch is augmented with stateless ops seeded
    from `seed` and the batch's position in the run, so the same seed gives the same batches."""
    from ..backend import tf

    parts = (x, y) if sample_weight is None else (x, y, sample_weight)
    data = tf.data.Dataset.from_tensor_slices(parts).shuffle(len(y), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if augmentation is not None and augmentation.active:
        from ..data import augment_batch

        # one (seed, counter) pair per batch; the counter runs on across epochs, so every epoch differs
        counters = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.constant(seed, tf.int64), i]))
        data = tf.data.Dataset.zip((data, counters)).map(
            lambda batch, s: (augment_batch(batch[0], augmentation, s), *batch[1:]))
    return data.prefetch(2)


def targets(y: np.ndarray, num_classes: int, soft: np.ndarray | None = None) -> np.ndarray:
    """One-hot labels (N, k), or with a teacher's soft targets appended (N, 2k): the training target."""
    onehot = np.eye(num_classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    return onehot if soft is None else np.concatenate([onehot, np.asarray(soft, np.float32)], axis=1)


def soft_targets(probs: np.ndarray, temperature: float) -> np.ndarray:
    """A teacher's probabilities softened at `temperature`: softmax(log p / T), which equals
    softmax(logits / T) since log p is the logits plus a per-sample constant."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), 1e-7, 1.0)) / temperature
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


_EPS = 1e-7


def make_loss(num_classes: int, label_smoothing: float = 0.0, temperature: float = 4.0, kd_weight: float = 1.0):
    """Per-sample loss on (N, k) one-hot targets, or (N, 2k) targets with the teacher's softened
    probabilities appended: kd_weight * CE(smoothed labels) + (1 - kd_weight) * T^2 * KL(teacher_T || student_T).
    The model ends in softmax; its log-probabilities stand in for logits (they differ by a constant)."""
    from ..backend import tf

    k, ls, t, a = num_classes, float(label_smoothing), float(temperature), float(kd_weight)

    def loss(y_true, y_pred):
        hard = y_true[:, :k] * (1.0 - ls) + ls / k
        logp = tf.math.log(tf.clip_by_value(y_pred, _EPS, 1.0))
        ce = -tf.reduce_sum(hard * logp, axis=-1)
        if y_true.shape[-1] == k or a >= 1.0:
            return ce
        soft = y_true[:, k:]
        log_student = tf.nn.log_softmax(logp / t, axis=-1)
        kl = tf.reduce_sum(soft * (tf.math.log(tf.clip_by_value(soft, _EPS, 1.0)) - log_student), axis=-1)
        return a * ce + (1.0 - a) * t * t * kl

    return loss


def _accuracy_metric(num_classes: int):
    from ..backend import keras

    def accuracy(y_true, y_pred):  # on the label part of the target: the name gives `val_accuracy`
        return keras.metrics.categorical_accuracy(y_true[:, :num_classes], y_pred)

    return accuracy


def learning_rate(cfg: TrainConfig, steps_per_epoch: int, *, scale: float = 1.0, epochs: int | None = None):
    """The learning rate (a float or a per-step Keras schedule) for `cfg`: constant, or linear
    warm-up over `warmup_epochs` then cosine decay to 0 at the end of `epochs`."""
    from ..backend import keras

    base = cfg.learning_rate * scale
    if cfg.schedule == "constant":
        return base
    total = max(1, (epochs or cfg.epochs) * steps_per_epoch)
    warmup = min(total - 1, int(round(cfg.warmup_epochs * steps_per_epoch))) if epochs is None else 0
    decay = keras.optimizers.schedules.CosineDecay(0.0 if warmup else base, total - warmup, alpha=0.0,
                                                   warmup_target=base if warmup else None, warmup_steps=warmup)
    return decay


def compile_for(model, cfg: TrainConfig, num_classes: int, steps_per_epoch: int, *, scale: float = 1.0,
                epochs: int | None = None, temperature: float | None = None) -> None:
    """Compile `model` with Adam at `cfg`'s schedule (times `scale`), the label-smoothed and
    optionally distilling loss (`make_loss`) and accuracy on the label part of the targets."""
    from ..backend import keras

    loss = make_loss(num_classes, cfg.label_smoothing, temperature or cfg.kd_temperature, cfg.kd_weight if cfg.distilled else 1.0)
    model.compile(keras.optimizers.Adam(learning_rate(cfg, steps_per_epoch, scale=scale, epochs=epochs)), loss,
                  [_accuracy_metric(num_classes)])


def fit_epochs(model, x, y, x_val, y_val, epochs, cfg: TrainConfig, class_weight, callbacks, *, sample_weight=None,
               augmentation=None) -> int:
    """Fit a compiled model for up to `epochs`; the epochs run. Out of memory or a loss that is no
    longer finite fails the candidate (CandidateFailed) instead of returning garbage. `class_weight`
    is for integer labels; with one-hot or distillation targets pass per-sample `sample_weight`."""
    from ..backend import keras, tf

    nan_guard = keras.callbacks.TerminateOnNaN()
    ctrl_c = keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: interrupt.check())
    try:
        history = model.fit(
            batches(x, y, cfg.batch_size, cfg.seed, sample_weight, augmentation), epochs=epochs,
            validation_data=(x_val, y_val), class_weight=class_weight, callbacks=[nan_guard, ctrl_c, *callbacks], verbose=0,
        )
    except tf.errors.ResourceExhaustedError as exc:
        raise CandidateFailed("training", f"out of memory: {str(exc).splitlines()[0][:200]}") from None
    losses = history.history.get("loss", [])
    if not losses or not all(math.isfinite(v) for v in losses):
        raise CandidateFailed("training", "loss became NaN or infinite")
    return len(losses)


def sample_weights(y: np.ndarray, class_weight: Mapping[int, float] | None) -> np.ndarray | None:
    """Class weights as one weight per sample (Keras' class_weight= reads the class from the target
    row, which a distillation target of width 2k breaks)."""
    if not class_weight:
        return None
    table = np.array([class_weight.get(c, 1.0) for c in range(int(max(class_weight)) + 1)], np.float32)
    return table[np.asarray(y, np.int64)]


def train_candidate(spec, x_train, y_train, x_val, y_val, num_classes: int, cfg: TrainConfig, class_weight=None, *,
                    augmentation=None, teacher_probs: np.ndarray | None = None, stop_rule=None) -> TrainResult:
    """Train `spec` on prepared float inputs, prune it to `spec.sparsity`, strip the wrappers.

    `augmentation` applies to training batches when `cfg.augment`; `teacher_probs` (a teacher's
    probabilities for each training image) make the target the labels blended with the teacher's
    softened outputs (knowledge distillation). `stop_rule(epoch, val_accuracy)`, called after each
    epoch (1-based), ends the training when it returns True (successive halving)."""
    from ..spec import build_model

    # No keras.backend.clear_session() and no global seeds: a library call must not wipe its
    # caller's Keras session or random state (and clearing freed no memory here, measured).
    idx = subset_indices(len(y_train), cfg.max_train_samples, cfg.seed)
    x, y = x_train[idx], y_train[idx]
    soft = soft_targets(teacher_probs[idx], cfg.kd_temperature) if teacher_probs is not None and cfg.distilled else None
    t_train = targets(y, num_classes, soft)
    t_val = targets(y_val, num_classes, np.zeros((len(y_val), num_classes), np.float32) if soft is not None else None)
    weights = sample_weights(y, class_weight)
    augment = augmentation if cfg.augment else None
    steps = max(1, math.ceil(len(y) / cfg.batch_size))
    model = build_model(spec, x.shape[-1], num_classes, seed=cfg.seed)
    initialize(model, cfg.seed)
    compile_for(model, cfg, num_classes, steps)
    from ..backend import keras

    stop = keras.callbacks.EarlyStopping("val_accuracy", patience=cfg.patience, restore_best_weights=True)
    curve: list[float] = []
    halved: list[int] = []

    def after_epoch(epoch: int, logs) -> None:  # runs after `stop` has seen the epoch
        curve.append(float((logs or {}).get("val_accuracy", float("nan"))))
        if stop_rule is not None and not model.stop_training and stop_rule(epoch + 1, curve[-1]):
            halved.append(epoch + 1)
            model.stop_training = True
            if stop.best_weights is not None:  # as early stopping would: keep the best epoch's weights
                model.set_weights(stop.best_weights)

    watch = keras.callbacks.LambdaCallback(on_epoch_end=after_epoch)
    epochs_run = fit_epochs(model, x, t_train, x_val, t_val, cfg.epochs, cfg, None, [stop, watch], sample_weight=weights,
                            augmentation=augment)
    if spec.sparsity > 0:
        model = prune_to(model, spec.sparsity, x, t_train, x_val, t_val, cfg, None, sample_weight=weights,
                         augmentation=augment, num_classes=num_classes)
        epochs_run += cfg.prune_epochs
    accuracy = float(np.mean(model.predict(x_val, batch_size=256, verbose=0).argmax(1) == y_val))
    return TrainResult(model, epochs_run, accuracy, weight_sparsity(model), TrainingData(x, t_train, weights, augment, t_val),
                       tuple(round(a, 6) for a in curve), halved[0] if halved else None)


def subset_indices(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices of at most `limit` of `n` samples, drawn at random (seeded), in their original order."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def prune_to(model, sparsity: float, x, y, x_val, y_val, cfg: TrainConfig, class_weight, *, sample_weight=None,
             augmentation=None, num_classes: int | None = None):
    """Fine-tune `model` under magnitude pruning up to `sparsity`; the stripped, compiled result.
    tfmot wraps the model's own layers: pass a clone if the original must stay dense. With
    `num_classes`, `y` are one-hot (or distillation) targets compiled as `compile_for` does;
    without, integer labels and sparse cross-entropy."""
    import tensorflow_model_optimization as tfmot

    from ..backend import keras

    steps = cfg.prune_epochs * max(1, math.ceil(len(y) / cfg.batch_size))
    # Reach the target at 3/4 of fine-tuning, so the last quarter recovers accuracy at the
    # final sparsity; masks update often enough that the final step is always one of them.
    end = max(1, (3 * steps) // 4)
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, sparsity, begin_step=0, end_step=end, frequency=max(1, end // 10))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    if num_classes is None:
        pruned.compile(keras.optimizers.Adam(cfg.learning_rate / 3), "sparse_categorical_crossentropy", ["accuracy"])
    else:
        compile_for(pruned, replace(cfg, schedule="constant", warmup_epochs=0.0), num_classes, 1, scale=1 / 3)
    fit_epochs(pruned, x, y, x_val, y_val, cfg.prune_epochs, cfg, class_weight, [tfmot.sparsity.keras.UpdatePruningStep()],
               sample_weight=sample_weight, augmentation=augmentation)
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
