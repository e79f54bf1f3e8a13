"""The study's teacher for knowledge distillation (`final.teacher`), trained once and cached in
`<out>/teacher/`, and its class probabilities on the training images, attached to the dataset
(`Dataset.teacher_probs`) for the final training of every student.

    auto        the trained trial with the highest float validation accuracy (any size: the teacher
                is not deployed), retrained in float with the final settings, without QAT or teacher
    <baseline>  one of the study's baselines (custom, vgg16, mobilenet; nas.spec.build_baseline) at the
                study's input size for it, trained once with the final settings, without QAT or teacher
    <path>      a Keras model file (.keras or .h5) whose input is a square image in [0, 1] and whose
                output is the dataset's class probabilities

The teacher sees training and validation data only; the test split is never shown to it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import atomic_write_text
from ._record import trained_rows
from ._study import StudyConfig, check_teacher

__all__ = ["attach_teacher", "TEACHER_DIR"]

TEACHER_DIR = "teacher"


def attach_teacher(dataset, config: StudyConfig, study, out_dir: Path):
    """`dataset` with the teacher's probabilities on its training images (the teacher trained or
    loaded once, cached in `<out>/teacher/`), or `dataset` itself when the final training has no teacher."""
    teacher = config.final.teacher
    if teacher == "none":
        return dataset
    check_teacher(teacher)
    from ..backend import keras
    from ..data import prepare

    folder = Path(out_dir) / TEACHER_DIR
    from ..spec import BASELINE_MODELS

    if teacher == "auto":
        model, name = _auto_teacher(dataset, config, study, folder)
    elif teacher in BASELINE_MODELS:
        model, name = _baseline_teacher(teacher, dataset, config, folder)
    else:
        model, name = keras.models.load_model(Path(teacher).expanduser(), compile=False), Path(teacher).name
    shape = model.input_shape
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] not in (1, 3):
        raise ConfigError(f"final.teacher: {teacher!r} takes input {shape}; a teacher takes square grey or RGB images")
    if model.output_shape[-1] != dataset.num_classes:
        raise ConfigError(f"final.teacher: {teacher!r} has {model.output_shape[-1]} outputs; {dataset.name} has "
                          f"{dataset.num_classes} classes")
    probs = model.predict(prepare(dataset.x_train, int(shape[1]), int(shape[3])), batch_size=256, verbose=0)
    return replace(dataset, teacher_probs=probs.astype(np.float32), teacher_name=name)


def _auto_teacher(dataset, config: StudyConfig, study, folder: Path):
    """The most accurate float model of the search (float validation accuracy of its proxy
    training), retrained with the final settings; cached by spec, settings and data."""
    from ..candidate import train_candidate
    from ..data import prepare
    from ..spec import ArchSpec

    rows = [r for r in trained_rows(study) if r.get("float_val_accuracy") is not None]
    if not rows:
        raise ConfigError("final.teacher: auto needs at least one trained trial; none finished")
    best = max(rows, key=lambda r: (r["float_val_accuracy"], -r["trial"]))
    spec = ArchSpec.from_json(best["spec"]).replace(quantization="float32", sparsity=0.0)
    settings = replace(config.final, teacher="none", qat="off")
    key = {"spec_hash": spec.hash, "settings": settings.to_dict(), "dataset_fingerprint": dataset.fingerprint}
    name = f"trial {best['trial']} (float, retrained)"
    cached = _cached(folder, key)
    if cached is not None:
        return cached, name
    x = prepare(dataset.x_train, spec.resolution, dataset.channels)
    x_val = prepare(dataset.x_val, spec.resolution, dataset.channels)
    trained = train_candidate(spec, x, dataset.y_train, x_val, dataset.y_val, dataset.num_classes, settings,
                              dataset.class_weights(), augmentation=dataset.augmentation)
    _store(folder, trained.model, {"key": key, "trial": best["trial"], "spec": spec.to_json(),
                                   "float_val_accuracy": trained.float_accuracy, "name": name})
    return trained.model, name


def _baseline_teacher(baseline: str, dataset, config: StudyConfig, folder: Path):
    """A study baseline trained with the final settings (no QAT, no teacher), cached like `auto`'s."""
    import math

    from ..backend import keras
    from ..candidate import compile_for, fit_epochs, global_random_state_kept, initialize, sample_weights, targets
    from ..data import prepare
    from ..spec import build_baseline, study_input_size

    settings = replace(config.final, teacher="none", qat="off")
    size = study_input_size(dataset.name, baseline)
    key = {"baseline": baseline, "size": size, "settings": settings.to_dict(), "dataset_fingerprint": dataset.fingerprint}
    name = f"baseline {baseline} ({size} px, float)"
    cached = _cached(folder, key)
    if cached is not None:
        return cached, name
    x = prepare(dataset.x_train, size, dataset.channels)
    x_val = prepare(dataset.x_val, size, dataset.channels)
    with global_random_state_kept():  # Keras applications draw from the global state
        model, weights = build_baseline(baseline, dataset.name, size, dataset.channels, dataset.num_classes)
    if weights == "none":
        initialize(model, settings.seed)  # seeded kernels, as every candidate gets
    k = dataset.num_classes
    compile_for(model, settings, k, max(1, math.ceil(len(x) / settings.batch_size)))
    stop = keras.callbacks.EarlyStopping("val_accuracy", patience=settings.patience, restore_best_weights=True)
    fit_epochs(model, x, targets(dataset.y_train, k), x_val, targets(dataset.y_val, k), settings.epochs, settings, None, [stop],
               sample_weight=sample_weights(dataset.y_train, dataset.class_weights()), augmentation=dataset.augmentation
               if settings.augment else None)
    accuracy = float(np.mean(model.predict(x_val, batch_size=256, verbose=0).argmax(1) == dataset.y_val))
    _store(folder, model, {"key": key, "float_val_accuracy": accuracy, "name": name})
    return model, name


def _cached(folder: Path, key: dict):
    from ..backend import keras

    record, path = folder / "teacher.json", folder / "teacher.keras"
    if record.is_file() and path.is_file() and json.loads(record.read_text()).get("key") == key:
        return keras.models.load_model(path, compile=False)
    return None


def _store(folder: Path, model, record: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "teacher.tmp.keras"
    model.save(tmp)
    tmp.replace(folder / "teacher.keras")
    atomic_write_text(folder / "teacher.json", json.dumps(record, indent=2))
