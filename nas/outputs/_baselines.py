"""`nas baselines`: the study's hand-picked models, trained and converted through its eight columns.

The study (shared/reference/paper_results.csv) trained a small Custom CNN, VGG16 and MobileNet
(MobileNetV2 for skin lesions) and converted each with the TFLite converter in eight ways. This
module does the same on the same data, and measures what the study did not: peak RAM (the TFLite
Micro arena) and per-sample latency, and why a conversion loses accuracy.

Columns (the study's names):
    tensorflow                    the Keras model itself
    tflite                        float32
    tflite_float16                float16 weights
    tflite_quant_by_size          dynamic-range int8 (Optimize.OPTIMIZE_FOR_SIZE, a deprecated alias of DEFAULT)
    tflite_quant_by_latency       dynamic-range int8 (OPTIMIZE_FOR_LATENCY, the same alias): converted once,
                                  reported in both columns
    tflite_experimental_sparsity  a 50%-pruned copy, float32 with the sparse weight encoding
    tflite_int16                  int16 activations, int8 weights
    tflite_int8                   full integer
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import catalog_dirs
from ..data import DataSplit
from ..spec import BASELINE_MODELS as MODELS
from ..spec import build_baseline, study_input_size
from ..errors import CandidateFailed, ConfigError, DataError, UnknownNameError
from ..files import atomic_write_bytes
from ..files import atomic_write_text

__all__ = ["COLUMNS", "MODELS", "BaselineRow", "study_input_size", "build_baseline", "run_baselines", "write_baselines",
           "read_baselines", "read_split", "SPLIT_FILE", "paper_results"]

COLUMNS = ("tensorflow", "tflite", "tflite_float16", "tflite_quant_by_size", "tflite_quant_by_latency",
           "tflite_experimental_sparsity", "tflite_int16", "tflite_int8")
_MODE = {"tflite": "float32", "tflite_float16": "float16", "tflite_quant_by_size": "dynamic_int8",
         "tflite_quant_by_latency": "dynamic_int8", "tflite_experimental_sparsity": "float32",
         "tflite_int16": "int16x8", "tflite_int8": "int8"}
METRICS = ("accuracy_pct", "size_reduction_pct", "inference_time_s", "size_bytes", "peak_ram_bytes", "latency_ms", "status")
MAX_DROP_POINTS = 2.0
SPLIT_FILE = "split.json"  # which split the baselines learnt from and were tested on (`DataSplit`)
PRUNED_SPARSITY = 0.5


@dataclass(frozen=True)
class BaselineRow:
    dataset: str
    input: str
    model: str
    values: dict[str, dict[str, object]] = field(default_factory=dict)  # column -> metric -> value
    notes: tuple[str, ...] = ()
    split: DataSplit | None = None  # the data split it was trained and tested on


def _tflm_words(reason: str) -> str:
    """TFLite Micro's refusal in words: a kernel's failed check becomes which kernel refused what."""
    import re

    match = re.search(r"kernels/(\w+?)(?:_common)?\.cc:\d+ (.+?) was not true", reason)
    if match:
        return f"its {match.group(1)} kernel does not take this model: {match.group(2)} does not hold"
    return reason


def _keras_bytes(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.h5"
        model.save(path, include_optimizer=False)
        return path.stat().st_size


def _diagnose(scores: np.ndarray, float_scores: np.ndarray, labels: np.ndarray, model: bytes, x: np.ndarray) -> str:
    """Why a converted model lost accuracy, as far as can be told from its outputs."""
    from ..measure import litert_predict

    predicted = scores.argmax(1)
    top_share = np.bincount(predicted).max() / len(predicted)
    if top_share > 0.9 and np.bincount(float_scores.argmax(1)).max() / len(predicted) < 0.9:
        return (f"collapsed: it predicts one class for {top_share:.0%} of the test set (the float model does not); "
                "typical of activations clipped by a calibration range that misses the data")
    try:
        reference = litert_predict(model, x, reference=True).argmax(1)
        if np.mean(reference == labels) - np.mean(predicted == labels) > 0.02:
            return "LiteRT's optimised kernels lose it; its reference kernels do not (kernel rounding)"
    except CandidateFailed:
        pass
    agreement = float(np.mean(predicted == float_scores.argmax(1)))
    return f"quantization error spread over classes (agrees with the float model on {agreement:.0%} of samples)"


def run_baselines(dataset_name: str, models: list[str], columns: list[str], out: Path, *, data_dir=None,
                  epochs: int = 10, batch_size: int = 64, max_train_samples: int | None = None, input_scale: float = 1.0,
                  seed: int = 0, latency_repeats: int = 20, progress=print) -> list[BaselineRow]:
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise UnknownNameError("column", unknown[0], COLUMNS)
    for name in models:
        if name not in MODELS:
            raise UnknownNameError("baseline model", name, MODELS)
    if not 0 < input_scale <= 1:
        raise ConfigError(f"--input-scale must be in (0, 1], got {input_scale}")

    from ..backend import keras
    from ..candidate import TrainConfig, convert, fit_epochs, global_random_state_kept, initialize, prune_to, subset
    from ..data import load_dataset, prepare
    from ..measure import host_latency_ms, litert_predict, tflm_arena

    dataset = load_dataset(dataset_name, data_dir, seed=seed)
    split = DataSplit.of(dataset, seed)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, max_train_samples=max_train_samples, seed=seed,
                      learning_rate=1e-3)
    rows = []
    for at, name in enumerate(models, 1):
        size = study_input_size(dataset.name, name, input_scale)
        channels = 3 if name != "custom" else dataset.channels
        step = f"[model {at}/{len(models)}] {name}"
        progress(f"{step}: {size}x{size}x{channels}, training up to {epochs} epochs")
        x_train, y_train = subset(prepare(dataset.x_train, size, channels), dataset.y_train, max_train_samples, seed)
        x_val = prepare(dataset.x_val, size, channels)
        x_test = prepare(dataset.x_test, size, channels)
        with global_random_state_kept():  # Keras applications draw layer seeds from Python's global random
            model, weights = build_baseline(name, dataset.name, size, channels, dataset.num_classes)
        if weights == "none":
            initialize(model, seed)  # seeded, without touching global random state
        for layer in model.layers:  # Keras' 0.99 leaves short trainings at chance on validation data
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.9
        # VGG16 has no batch norm: from scratch it needs a smaller step to leave chance
        rate = cfg.learning_rate / 10 if name == "vgg16" and weights == "none" else cfg.learning_rate
        model.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy", ["accuracy"])
        stop = keras.callbacks.EarlyStopping("val_accuracy", patience=cfg.patience, restore_best_weights=True)
        values: dict[str, dict[str, object]] = {}
        notes = [f"weights: {weights}"]
        try:
            fit_epochs(model, x_train, y_train, x_val, dataset.y_val, epochs, cfg, dataset.class_weights(), [stop])
        except CandidateFailed as exc:
            values = {c: {"status": f"training failed: {exc.reason}"} for c in columns}
            rows.append(BaselineRow(dataset.name, f"{size}x{size}", name, values, tuple(notes), split))
            continue
        keras_bytes = _keras_bytes(model)
        start = time.perf_counter()
        float_scores = model.predict(x_test, batch_size=256, verbose=0)
        keras_time = time.perf_counter() - start
        float_acc = 100 * float(np.mean(float_scores.argmax(1) == dataset.y_test))
        notes.append(f"Keras model {keras_bytes:,} bytes")
        chance = 100 * float(np.bincount(dataset.y_test).max() / len(dataset.y_test))
        if float_acc < chance + 5:
            notes.append(f"the float model did not learn ({float_acc:.1f}% against {chance:.1f}% for the majority class): "
                             "train longer (--epochs), or put ImageNet weights in ~/.keras/models; its columns say nothing "
                             "about conversion")
        converted: dict[str, bytes | CandidateFailed] = {}
        pruned_acc = float("nan")
        for column in columns:
            if column == "tensorflow":
                values[column] = {"accuracy_pct": round(float_acc, 2), "size_reduction_pct": None,
                                      "inference_time_s": round(keras_time, 3), "size_bytes": keras_bytes, "status": "ok"}
                continue
            progress(f"{step}: {column} ({columns.index(column) + 1}/{len(columns)}): converting and measuring")
            key = "dynamic" if _MODE[column] == "dynamic_int8" else column
            if key not in converted:
                try:
                    if column == "tflite_experimental_sparsity":
                        # tfmot wraps the model's own layers: prune a copy, or every later column is pruned too
                        copy = keras.models.clone_model(model)
                        copy.set_weights(model.get_weights())
                        pruned = prune_to(copy, PRUNED_SPARSITY, x_train, y_train, x_val, dataset.y_val, cfg, dataset.class_weights())
                        pruned_acc = 100 * float(np.mean(pruned.predict(x_test, batch_size=256, verbose=0).argmax(1) == dataset.y_test))
                        converted[key] = convert(pruned, "float32", sparse=True)
                    else:
                        converted[key] = convert(model, _MODE[column], x_train)
                except CandidateFailed as exc:
                    converted[key] = exc
            result = converted[key]
            if isinstance(result, CandidateFailed):
                values[column] = {"status": f"{result.stage} failed: {result.reason}"}
                continue
            try:
                start = time.perf_counter()
                scores = litert_predict(result, x_test)
                elapsed = time.perf_counter() - start
                latency = host_latency_ms(result, repeats=latency_repeats)
            except CandidateFailed as exc:
                values[column] = {"status": f"{exc.stage} failed: {exc.reason}",
                                      "size_reduction_pct": round(100 * (1 - len(result) / keras_bytes), 2)}
                continue
            accuracy = 100 * float(np.mean(scores.argmax(1) == dataset.y_test))
            # kept so `nas compare` can price the converted model on the study's board
            atomic_write_bytes(baseline_model_path(out, dataset.name, name, column), result)
            arena = tflm_arena(result)
            measured = {"accuracy_pct": round(accuracy, 2), "size_reduction_pct": round(100 * (1 - len(result) / keras_bytes), 2),
                        "inference_time_s": round(elapsed, 3), "latency_ms": round(latency, 4), "size_bytes": len(result),
                        "peak_ram_bytes": arena.arena_bytes if arena.compatible else None, "status": "ok"}
            if not arena.compatible:  # LiteRT ran it; the microcontroller runtime does not: not "ok"
                measured["status"] = f"LiteRT only: TFLite Micro cannot run it ({_tflm_words(arena.reason)})"
            if float_acc - accuracy > MAX_DROP_POINTS:
                if column == "tflite_experimental_sparsity" and abs(pruned_acc - accuracy) <= MAX_DROP_POINTS:
                    cause = (f"pruning to {PRUNED_SPARSITY:.0%} sparsity lost it, not the conversion: the pruned Keras model "
                             f"scores {pruned_acc:.2f}% (fine-tuned {cfg.prune_epochs} epochs)")
                else:
                    cause = _diagnose(scores, float_scores, dataset.y_test, result, x_test)
                notes.append(f"{column}: {accuracy:.2f}% vs {float_acc:.2f}% float (-{float_acc - accuracy:.1f} points): {cause}")
            values[column] = measured
        rows.append(BaselineRow(dataset.name, f"{size}x{size}", name, values, tuple(notes), split))
    return rows


def write_baselines(rows: list[BaselineRow], columns: list[str], out: Path) -> None:
    """baselines.csv in paper_results.csv's layout (plus peak_ram_bytes, latency_ms, status rows), report.md,
    and split.json: the rows' data split, which `nas compare` checks against the study's."""
    splits = {row.split for row in rows if row.split is not None}
    if len(splits) > 1:
        raise ConfigError(f"baselines from {len(splits)} different data splits cannot share one baselines.csv")
    # the old record goes first: a write cut short leaves rows without a split (refused), never the wrong one
    (out / SPLIT_FILE).unlink(missing_ok=True)
    lines = [",".join(["dataset", "input", "model", "metric", *COLUMNS])]
    for row in rows:
        for metric in METRICS:
            cells = []
            for column in COLUMNS:
                value = row.values.get(column, {}).get(metric) if column in columns else None
                cells.append("" if value is None else _csv_cell(value))
            lines.append(",".join([row.dataset, row.input, row.model, metric, *cells]))
    atomic_write_text(out / "baselines.csv", "\n".join(lines) + "\n")
    atomic_write_text(out / "report.md", _report(rows, columns))
    if splits:
        atomic_write_text(out / SPLIT_FILE, json.dumps(splits.pop().to_dict(), indent=2) + "\n")


def _csv_cell(value) -> str:
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n') else text


def paper_results() -> list[dict]:
    """The study's table (shipped in studies/paper_results.csv)."""
    for folder in catalog_dirs("studies"):
        if (folder / "paper_results.csv").is_file():
            with open(folder / "paper_results.csv", newline="") as fh:
                return list(csv.DictReader(fh))
    return []


def baseline_model_path(folder: Path, dataset: str, model: str, column: str) -> Path:
    """Where `nas baselines` keeps a converted baseline (`<out>/models/<dataset>-<model>-<column>.tflite`)."""
    return Path(folder) / "models" / f"{dataset}-{model}-{column}.tflite"


def read_baselines(folder: Path) -> list[dict]:
    path = Path(folder) / "baselines.csv"
    if not path.is_file():
        raise ConfigError(f"{folder} holds no baselines.csv (run `nas baselines ... --out {folder}`)")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_split(folder: Path) -> DataSplit:
    """The data split the baselines in `folder` were trained and tested on (its split.json)."""
    path = Path(folder) / SPLIT_FILE
    if not path.is_file():
        raise ConfigError(f"the baselines in {folder} carry no record of their data split (no {SPLIT_FILE}: written by "
                          "an earlier version, or cut short), so nothing shows they did not train on a study's test "
                          f"images: rerun `nas baselines ... --out {folder}` with the study's dataset and --seed")
    try:
        return DataSplit.from_dict(json.loads(path.read_text()), str(path))
    except (ValueError, TypeError, DataError) as exc:
        raise ConfigError(f"{path} is not a split record ({exc}): rerun `nas baselines ... --out {folder}`") from None


def _fmt(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if not math.isnan(value) else "—"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _report(rows: list[BaselineRow], columns: list[str]) -> str:
    study = paper_results()
    out = ["# Baselines: the study's models, converted through its eight columns", "",
           "Same data, same machine. `tflite_quant_by_size` and `tflite_quant_by_latency` are the same "
           "conversion: both optimisation flags are deprecated aliases of `Optimize.DEFAULT`, which the "
           "converter treats alike (dynamic-range int8), so it ran once. Latency is per sample (LiteRT, 1 "
           "thread); inference time is the whole test split, batched; peak RAM is the TFLite Micro arena "
           "(— where TFLite Micro cannot run the mode).", ""]
    split = next((row.split for row in rows if row.split is not None), None)
    if split is not None:
        out += [f"Data: split {split.describe()}, fingerprint `{split.fingerprint}` (`nas compare` checks it is the "
                "study's).", ""]
    for row in rows:
        out += [f"## {row.dataset} — {row.model} ({row.input})", "", *[f"- {note}" for note in row.notes], ""]
        out.append("| metric | " + " | ".join(columns) + " |")
        out.append("|---|" + "---|" * len(columns))
        for metric in METRICS:
            out.append(f"| {metric} | " + " | ".join(_fmt(row.values.get(c, {}).get(metric)) for c in columns) + " |")
        theirs = [r for r in study if r["dataset"] == row.dataset and r["model"] == row.model]
        if theirs:
            out += ["", f"The study ({theirs[0]['input']}):", "", "| metric | " + " | ".join(columns) + " |",
                    "|---|" + "---|" * len(columns)]
            for r in theirs:
                out.append(f"| {r['metric']} | " + " | ".join(r.get(c) or "—" for c in columns) + " |")
        out.append("")
    return "\n".join(out)
