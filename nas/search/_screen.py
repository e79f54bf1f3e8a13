"""Feasibility before training: what a spec costs is known before it learns anything.

Two stages, cheapest first:
1. analytic (microseconds): the device must run the quantization mode; weight bytes and the
   activation liveness peak are lower bounds of the .tflite size and of the arena.
2. footprint (about a second): the untrained model is converted in its mode and allocated in
   the TFLite Micro interpreter. The .tflite size and the arena do not depend on weight values,
   so these are the exact figures the trained model will have.
A spec that fails either stage is never trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InfeasibleBudgetError
from ..latency import Device
from ..spec import ArchSpec, activation_peak_bytes, weight_bytes
from ..units import KB
from ._budgets import Budgets

__all__ = ["Screen", "analytic_screen", "footprint_screen", "space_floor", "check_budgets_reachable"]


@dataclass(frozen=True)
class Screen:
    feasible: bool
    stage: str  # "analytic" | "footprint"
    reason: str
    size_bytes: float
    peak_ram_bytes: float
    latency_ms: float | None = None


def _verdict(stage: str, spec: ArchSpec, budgets: Budgets, device: Device, size: float, ram: float, latency: float | None) -> Screen:
    if not device.runs(spec.quantization):
        return Screen(False, stage, f"{device.name} does not run {spec.quantization} models", size, ram, latency)
    reasons = []
    if budgets.max_size_kb is not None and size > budgets.max_size_kb * KB:
        reasons.append(f"size {size / KB:.1f} KB > {budgets.max_size_kb} KB")
    if budgets.max_ram_kb is not None and ram > budgets.max_ram_kb * KB:
        reasons.append(f"RAM {ram / KB:.1f} KB > {budgets.max_ram_kb} KB")
    if budgets.max_latency_ms is not None and latency is not None and latency > budgets.max_latency_ms:
        reasons.append(f"latency {latency:.2f} ms > {budgets.max_latency_ms} ms")
    return Screen(not reasons, stage, "; ".join(reasons), size, ram, latency)


def analytic_screen(spec: ArchSpec, in_channels: int, num_classes: int, budgets: Budgets, device: Device) -> Screen:
    return _verdict("analytic", spec, budgets, device, weight_bytes(spec, in_channels, num_classes),
                    activation_peak_bytes(spec, in_channels, num_classes), device.predict_latency_ms(spec, in_channels, num_classes))


def footprint_screen(spec: ArchSpec, in_channels: int, num_classes: int, budgets: Budgets, device: Device) -> Screen:
    """Exact size and arena of the untrained model converted in the spec's mode."""
    from ..backend import keras
    from ..candidate import convert
    from ..errors import CandidateFailed
    from ..measure import tflm_arena
    from ..spec import build_model

    keras.backend.clear_session()
    model = build_model(spec, in_channels, num_classes)
    calibration = np.random.default_rng(0).random((8, spec.resolution, spec.resolution, in_channels), np.float32)
    try:
        tflite = convert(model, spec.quantization, calibration)
    except CandidateFailed as exc:
        return Screen(False, "footprint", exc.reason, float("nan"), float("nan"))
    arena = tflm_arena(tflite)
    # A crash of the untrained model says little about the trained one (TFLite Micro aborts on
    # the tiny softmax input scale of near-constant untrained logits): only a refusal, such as an
    # unsupported operator, rejects the spec here; the trained model is measured for real later.
    if device.runtime == "tflm" and not arena.compatible and not arena.crashed:
        return Screen(False, "footprint", f"TFLite Micro cannot run it: {arena.reason}", len(tflite), float("nan"))
    ram = arena.arena_bytes if arena.compatible else activation_peak_bytes(spec, in_channels, num_classes)
    return _verdict("footprint", spec, budgets, device, len(tflite), ram, device.predict_latency_ms(spec, in_channels, num_classes))


def space_floor(space, in_channels: int, num_classes: int, device: Device, samples: int = 3000, seed: int = 0) -> dict:
    """The smallest analytic size and RAM over the space's smallest spec and a random sample."""
    rng = np.random.default_rng(seed)
    specs = [space.build(lambda name, opts: opts[0])] + [space.sample(rng) for _ in range(samples)]
    specs = [s for s in specs if device.runs(s.quantization)]
    if not specs:
        raise InfeasibleBudgetError(f"device {device.name} runs none of the space's quantization modes "
                                    f"{list(space.choices['quantization'])}; it runs {list(device.quantization)}")
    return {
        "min_size_kb": min(weight_bytes(s, in_channels, num_classes) for s in specs) / KB,
        "min_ram_kb": min(activation_peak_bytes(s, in_channels, num_classes) for s in specs) / KB,
        "min_latency_ms": _min_latency(specs, in_channels, num_classes, device),
    }


def _min_latency(specs, in_channels: int, num_classes: int, device: Device) -> float | None:
    """The smallest predicted latency over `specs`, where the device has a latency model."""
    values = [device.predict_latency_ms(s, in_channels, num_classes) for s in specs[:1000]]
    values = [v for v in values if v is not None]
    return min(values) if values else None


def check_budgets_reachable(space, in_channels: int, num_classes: int, budgets: Budgets, device: Device) -> dict:
    """InfeasibleBudgetError, before any training, when no spec of the space can meet the budget."""
    floor = space_floor(space, in_channels, num_classes, device)
    too_tight = []
    if budgets.max_size_kb is not None and budgets.max_size_kb < floor["min_size_kb"]:
        too_tight.append(f"max size {budgets.max_size_kb} KB (the space's smallest model needs {floor['min_size_kb']:.1f} KB)")
    if budgets.max_ram_kb is not None and budgets.max_ram_kb < floor["min_ram_kb"]:
        too_tight.append(f"max RAM {budgets.max_ram_kb} KB (the space's smallest activations need {floor['min_ram_kb']:.1f} KB)")
    if budgets.max_latency_ms is not None and floor["min_latency_ms"] is not None and budgets.max_latency_ms < floor["min_latency_ms"]:
        too_tight.append(f"max latency {budgets.max_latency_ms} ms on {device.name} "
                         f"(the fastest sampled model is predicted at {floor['min_latency_ms']:.2f} ms)")
    if too_tight:
        raise InfeasibleBudgetError(f"no candidate of space {space.name!r} can meet {' and '.join(too_tight)}; "
                                    "raise the budget or use a smaller space")
    return floor
