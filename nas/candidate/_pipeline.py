"""One candidate end to end: spec -> trained, pruned Keras model -> TFLite -> measurements.

Every stage that can fail for a reason of the candidate's own (conversion, allocation, NaN
loss, out of memory) raises `CandidateFailed`; `evaluate_candidate` returns a failed result
carrying the stage and reason instead of crashing the caller.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..data import Dataset, prepare
from ..errors import CandidateFailed, ConfigError
from ..spec import ArchSpec, activation_peak_bytes, count_macs, count_params, weight_bytes
from ._train import TrainConfig, train_candidate

__all__ = ["CandidateResult", "accuracy_of", "evaluate_candidate", "evaluate_modes", "measure_tflite", "TFLM_MODES",
           "SPARSE_ENCODED_MODES", "sparse_encoded"]

#: Modes whose converted models the TFLite Micro interpreter runs (hybrid and float16-weight
#: models need kernels it lacks); checked for real on every candidate, this only documents it.
TFLM_MODES = ("float32", "int8", "int16x8")
#: Modes whose pruned weights are converted with the converter's sparse encoding. Measured
#: (benchmarks/README.md, sparsity): a pruned float32 file shrinks (30% at 50% sparsity) and LiteRT
#: runs it with the same instructions, densifying the weights into RAM when it starts; a
#: sparse-encoded int8 model does not run under XNNPACK, so int8 stays dense. TFLite Micro runs
#: neither (no DENSIFY operator); the device profiles say so and the search does not prune for it.
SPARSE_ENCODED_MODES = ("float32",)


@dataclass(frozen=True)
class CandidateResult:
    """What one candidate measured; crosses process boundaries (Ray) and feeds every report."""

    spec: ArchSpec
    dataset: str
    status: str = "ok"  # "ok" | "failed"
    failed_stage: str = ""
    reason: str = ""
    split: str = "val"  # the split `accuracy` and `float_accuracy` were measured on
    accuracy: float | None = None  # converted model, LiteRT, on `split`
    float_accuracy: float | None = None  # Keras model before conversion, on `split`
    val_accuracy: float | None = None  # converted model on the validation split, whatever `split` is: what selection uses
    float_val_accuracy: float | None = None  # Keras model on the validation split
    eval_samples: int | None = None  # samples in `split`
    val_samples: int | None = None  # samples in the validation split
    size_bytes: int | None = None  # exact .tflite size
    params: int | None = None
    macs: int | None = None
    peak_ram_bytes: int | None = None
    peak_ram_source: str = ""  # "tflm_arena" (measured) or "activation_estimate"
    host_latency_ms: float | None = None
    tflm_compatible: bool | None = None
    tflm_reason: str = ""
    weight_sparsity: float | None = None
    epochs_run: int | None = None
    learning_curve: tuple[float, ...] = ()  # validation accuracy of the float model after each epoch
    halved_at: int | None = None  # the epoch successive halving stopped the training at, where it did
    # the final-training record (issue 13): post-training-quantized accuracy next to the deployed one
    ptq_accuracy: float | None = None  # the post-training-quantized model on `split` (quantized modes)
    ptq_val_accuracy: float | None = None
    qat_val_accuracy: float | None = None  # the QAT model converted, on validation, where QAT ran
    qat: str = ""  # "used" | "ptq_kept" | "not_needed" | "off" | "unsupported" | "skipped" | "failed" | "" (float modes)
    qat_note: str = ""  # why, in words
    qat_unannotated: tuple[str, ...] = ()  # layers tfmot left without fake quantization
    distilled_from: str = ""  # the teacher, where the model was distilled
    augmentation: str = ""  # what augmented its training batches ("none" when off)
    schedule: str = ""  # the learning-rate schedule it trained with
    timings_s: dict[str, float] = field(default_factory=dict)  # seconds per stage: prepare, train, convert, ...
    tflite: bytes | None = field(default=None, repr=False)

    def to_dict(self, include_model: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        data["spec_hash"] = self.spec.hash
        data["quantization"] = self.spec.quantization
        data["sparsity"] = self.spec.sparsity
        if not include_model:
            data.pop("tflite")
        return data


def accuracy_of(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def measure_tflite(model: bytes, spec: ArchSpec, in_channels: int, num_classes: int, latency_repeats: int = 30) -> dict[str, Any]:
    """Size, TFLite Micro compatibility and arena, host latency of converted bytes."""
    from ..measure import host_latency_ms, tflm_arena

    arena = tflm_arena(model)
    if arena.compatible:
        peak, source = arena.arena_bytes, "tflm_arena"
    elif sparse_encoded(spec):  # LiteRT densifies the weights into RAM when it starts
        peak = activation_peak_bytes(spec, in_channels, num_classes) + weight_bytes(spec.replace(sparsity=0.0), in_channels, num_classes)
        source = "activation_estimate+densified_weights"
    else:
        peak, source = activation_peak_bytes(spec, in_channels, num_classes), "activation_estimate"
    return {
        "size_bytes": len(model),
        "tflm_compatible": arena.compatible,
        "tflm_reason": arena.reason,
        "peak_ram_bytes": peak,
        "peak_ram_source": source,
        "host_latency_ms": host_latency_ms(model, repeats=latency_repeats),
    }


def sparse_encoded(spec: ArchSpec) -> bool:
    """Whether `spec`'s converted model carries its pruned weights in the sparse encoding."""
    return spec.sparsity > 0 and spec.quantization in SPARSE_ENCODED_MODES


def evaluate_candidate(
    spec: ArchSpec,
    dataset: Dataset,
    cfg: TrainConfig = TrainConfig(),
    *,
    split: str = "val",
    latency_repeats: int = 30,
    stop_rule=None,
) -> CandidateResult:
    """Train, prune, convert and measure `spec` on `dataset`; never raises CandidateFailed.
    `stop_rule(epoch, val_accuracy)` may end the training early (successive halving)."""
    return evaluate_modes(spec, dataset, cfg, (spec.quantization,), split=split, latency_repeats=latency_repeats,
                          stop_rule=stop_rule)[0]


def evaluate_modes(
    spec: ArchSpec,
    dataset: Dataset,
    cfg: TrainConfig = TrainConfig(),
    modes: tuple[str, ...] = ("float32",),
    *,
    split: str = "val",
    latency_repeats: int = 30,
    stop_rule=None,
) -> list[CandidateResult]:
    """Train `spec` once, then convert and measure it in each quantization mode of `modes`.

    Quantization happens after training, so the modes share one trained (and pruned) model;
    each result carries the spec with its own mode.
    """
    from ..measure import litert_predict
    from ._convert import REPRESENTATIVE_SAMPLES, convert

    if split not in ("val", "test"):
        raise ConfigError(f"split: {split!r} is not one of ['val', 'test']")
    c, k = dataset.channels, dataset.num_classes
    base = {"dataset": dataset.name, "split": split, "params": count_params(spec, c, k), "macs": count_macs(spec, c, k),
            "val_samples": len(dataset.y_val), "eval_samples": len(dataset.y_val if split == "val" else dataset.y_test)}
    specs = [spec.replace(quantization=m) for m in modes]
    shared: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(timings: dict[str, float], name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    def failed(mode_spec: ArchSpec, failure: CandidateFailed, timings: dict[str, float], **known) -> CandidateResult:
        return CandidateResult(mode_spec, status="failed", failed_stage=failure.stage, reason=failure.reason,
                               timings_s=timings, **base, **known)

    try:
        x_train = prepare(dataset.x_train, spec.resolution, c)
        x_val = prepare(dataset.x_val, spec.resolution, c)
        x_eval, y_eval = (x_val, dataset.y_val) if split == "val" else (prepare(dataset.x_test, spec.resolution, c), dataset.y_test)
        lap(shared, "prepare")
        if cfg.distilled and dataset.teacher_probs is None:
            raise ConfigError(f"training.teacher is {cfg.teacher!r} but the dataset carries no teacher outputs; "
                              "the search attaches them (nas.search.attach_teacher)")
        augmentation = dataset.augmentation if cfg.augment else None
        trained = train_candidate(spec, x_train, dataset.y_train, x_val, dataset.y_val, k, cfg, dataset.class_weights(),
                                  augmentation=augmentation, teacher_probs=dataset.teacher_probs if cfg.distilled else None,
                                  stop_rule=stop_rule)
        float_accuracy = (
            trained.float_accuracy if split == "val"
            else accuracy_of(trained.model.predict(x_eval, batch_size=256, verbose=0), y_eval)
        )
        lap(shared, "train")
    except CandidateFailed as failure:
        return [failed(s, failure, dict(shared)) for s in specs]
    representative = x_train[np.random.default_rng(cfg.seed).permutation(len(x_train))[:REPRESENTATIVE_SAMPLES]]
    training = {"epochs_run": trained.epochs_run, "learning_curve": trained.learning_curve, "halved_at": trained.halved_at,
                "weight_sparsity": round(trained.weight_sparsity, 4),
                "float_accuracy": float_accuracy, "float_val_accuracy": trained.float_accuracy,
                "augmentation": augmentation.describe() if augmentation is not None else "none",
                "schedule": cfg.schedule if cfg.schedule == "constant" else f"cosine, {cfg.warmup_epochs:g} warm-up epoch(s)",
                "distilled_from": (dataset.teacher_name or cfg.teacher) if cfg.distilled else ""}
    results = []
    for mode_spec in specs:
        timings = dict(shared)
        known: dict[str, Any] = dict(training)
        try:
            model = convert(trained.model, mode_spec.quantization, representative, sparse=sparse_encoded(mode_spec))
            lap(timings, "convert")
            scores = {"accuracy": accuracy_of(litert_predict(model, x_eval), y_eval)}
            scores["val_accuracy"] = scores["accuracy"] if split == "val" else accuracy_of(litert_predict(model, x_val), dataset.y_val)
            lap(timings, "evaluate")
            if mode_spec.quantization != "float32":
                known.update(ptq_accuracy=scores["accuracy"], ptq_val_accuracy=scores["val_accuracy"])
            model, scores = _maybe_qat(mode_spec, trained, model, scores, known, cfg, k, x_val, dataset.y_val, x_eval, y_eval,
                                       representative, split, timings, lap)
            known.update(scores, tflite=model)
            known.update(measure_tflite(model, mode_spec, c, k, latency_repeats))
            lap(timings, "measure")
        except CandidateFailed as failure:
            results.append(failed(mode_spec, failure, timings, **known))
            continue
        results.append(CandidateResult(mode_spec, timings_s=timings, **base, **known))
    return results


def _maybe_qat(spec, trained, ptq_model, ptq_scores, known, cfg, k, x_val, y_val, x_eval, y_eval, representative, split,
               timings, lap):
    """QAT per `cfg.qat` for an int8 spec; records in `known` what was decided and why. Returns
    the converted model to keep and its scores: the QAT one only when it is better on validation."""
    from ..measure import litert_predict
    from ._convert import convert
    from ._qat import QAT_UNSUPPORTED, qat_finetune

    mode = spec.quantization
    if mode == "float32":
        return ptq_model, ptq_scores
    if cfg.qat == "off":
        known.update(qat="off", qat_note="QAT off: post-training quantization")
        return ptq_model, ptq_scores
    if mode != "int8":
        known.update(qat="unsupported", qat_note=QAT_UNSUPPORTED.get(mode, "post-training quantization"))
        return ptq_model, ptq_scores
    if spec.sparsity > 0:
        known.update(qat="skipped", qat_note="pruned model: QAT fine-tuning would undo the sparsity; post-training quantization")
        return ptq_model, ptq_scores
    loss_points = 100 * (trained.float_accuracy - ptq_scores["val_accuracy"])
    if cfg.qat == "auto" and loss_points <= cfg.qat_threshold:
        known.update(qat="not_needed", qat_note=f"PTQ loses {loss_points:.2f} points on validation "
                                                f"(threshold {cfg.qat_threshold:g}): QAT not run")
        return ptq_model, ptq_scores
    try:
        qat = qat_finetune(trained.model, trained.data, x_val, cfg, k)
        qat_model = convert(qat.model, "int8", representative)
    except CandidateFailed as failure:  # QAT is an improvement stage: its failure leaves the PTQ model standing
        lap(timings, "qat")
        known.update(qat="failed", qat_note=f"QAT failed at {failure.stage}: {failure.reason}; post-training quantization kept")
        return ptq_model, ptq_scores
    qat_val = accuracy_of(litert_predict(qat_model, x_val), y_val)
    lap(timings, "qat")
    known.update(qat_val_accuracy=qat_val, qat_unannotated=qat.unannotated)
    if qat_val > ptq_scores["val_accuracy"]:
        known.update(epochs_run=known["epochs_run"] + qat.epochs_run, qat="used", qat_note=f"QAT ({qat.epochs_run} epochs) beat PTQ on validation: "
                                          f"{100 * qat_val:.2f}% against {100 * ptq_scores['val_accuracy']:.2f}%")
        test = qat_val if split == "val" else accuracy_of(litert_predict(qat_model, x_eval), y_eval)
        return qat_model, {"accuracy": test, "val_accuracy": qat_val}
    known.update(qat="ptq_kept", qat_note=f"QAT ({qat.epochs_run} epochs) did not beat PTQ on validation "
                                          f"({100 * qat_val:.2f}% against {100 * ptq_scores['val_accuracy']:.2f}%): PTQ kept")
    return ptq_model, ptq_scores
