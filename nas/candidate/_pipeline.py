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
) -> CandidateResult:
    """Train, prune, convert and measure `spec` on `dataset`; never raises CandidateFailed."""
    return evaluate_modes(spec, dataset, cfg, (spec.quantization,), split=split, latency_repeats=latency_repeats)[0]


def evaluate_modes(
    spec: ArchSpec,
    dataset: Dataset,
    cfg: TrainConfig = TrainConfig(),
    modes: tuple[str, ...] = ("float32",),
    *,
    split: str = "val",
    latency_repeats: int = 30,
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
        trained = train_candidate(spec, x_train, dataset.y_train, x_val, dataset.y_val, k, cfg, dataset.class_weights())
        float_accuracy = (
            trained.float_accuracy if split == "val"
            else accuracy_of(trained.model.predict(x_eval, batch_size=256, verbose=0), y_eval)
        )
        lap(shared, "train")
    except CandidateFailed as failure:
        return [failed(s, failure, dict(shared)) for s in specs]
    representative = x_train[np.random.default_rng(cfg.seed).permutation(len(x_train))[:REPRESENTATIVE_SAMPLES]]
    training = {"epochs_run": trained.epochs_run, "weight_sparsity": round(trained.weight_sparsity, 4),
                "float_accuracy": float_accuracy, "float_val_accuracy": trained.float_accuracy}
    results = []
    for mode_spec in specs:
        timings = dict(shared)
        known: dict[str, Any] = dict(training)
        try:
            model = convert(trained.model, mode_spec.quantization, representative, sparse=sparse_encoded(mode_spec))
            known["tflite"] = model
            lap(timings, "convert")
            known["accuracy"] = accuracy_of(litert_predict(model, x_eval), y_eval)
            known["val_accuracy"] = known["accuracy"] if split == "val" else accuracy_of(litert_predict(model, x_val), dataset.y_val)
            lap(timings, "evaluate")
            known.update(measure_tflite(model, mode_spec, c, k, latency_repeats))
            lap(timings, "measure")
        except CandidateFailed as failure:
            results.append(failed(mode_spec, failure, timings, **known))
            continue
        results.append(CandidateResult(mode_spec, timings_s=timings, **base, **known))
    return results
