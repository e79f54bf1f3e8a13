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

__all__ = ["Screen", "analytic_screen", "footprint_screen", "smallest_specs", "space_floor", "check_budgets_reachable",
           "sparse_size_bound"]


@dataclass(frozen=True)
class Screen:
    feasible: bool
    stage: str  # "analytic" | "footprint"
    reason: str
    size_bytes: float
    peak_ram_bytes: float
    latency_ms: float | None = None
    runs: bool = True  # False: rejected because the device cannot run or use the spec, not for a budget


def _verdict(stage: str, spec: ArchSpec, budgets: Budgets, device: Device, size: float, ram: float, latency: float | None) -> Screen:
    if not device.runs(spec.quantization):
        return Screen(False, stage, f"{device.name} does not run {spec.quantization} models", size, ram, latency, runs=False)
    if spec.sparsity > 0 and not device.gains_from_sparsity(spec.quantization):
        return Screen(False, stage, f"{device.name} gains nothing from pruned {spec.quantization} weights", size, ram, latency,
                      runs=False)
    reasons = []
    if budgets.max_size_kb is not None and size > budgets.max_size_kb * KB:
        reasons.append(f"size {size / KB:.1f} KB > {budgets.max_size_kb} KB")
    if budgets.max_ram_kb is not None and ram > budgets.max_ram_kb * KB:
        reasons.append(f"RAM {ram / KB:.1f} KB > {budgets.max_ram_kb} KB")
    if budgets.max_latency_ms is not None and latency is not None and latency > budgets.max_latency_ms:
        reasons.append(f"latency {latency:.2f} ms > {budgets.max_latency_ms} ms")
    energy = latency * device.power_mw if latency is not None and device.power_mw is not None else None
    if budgets.max_energy_uj is not None and energy is not None and energy > budgets.max_energy_uj:
        reasons.append(f"energy {energy:.1f} uJ > {budgets.max_energy_uj} uJ")
    return Screen(not reasons, stage, "; ".join(reasons), size, ram, latency)


def analytic_screen(spec: ArchSpec, in_channels: int, num_classes: int, budgets: Budgets, device: Device) -> Screen:
    return _verdict("analytic", spec, budgets, device, weight_bytes(spec, in_channels, num_classes),
                    activation_peak_bytes(spec, in_channels, num_classes), device.predict_latency_ms(spec, in_channels, num_classes))


def _untrained_tflite(spec: ArchSpec, in_channels: int, num_classes: int) -> bytes:
    """The untrained model of `spec` converted in its mode (CandidateFailed when it does not convert)."""
    from ..candidate import convert
    from ..spec import build_model

    model = build_model(spec, in_channels, num_classes)
    calibration = np.random.default_rng(0).random((8, spec.resolution, spec.resolution, in_channels), np.float32)
    return convert(model, spec.quantization, calibration)


def sparse_size_bound(spec: ArchSpec, dense_bytes: int, in_channels: int, num_classes: int) -> float:
    """A lower bound of the sparse-encoded size of `spec` pruned to its sparsity: the dense file less
    the pruned weights (the encoding adds indices on top)."""
    return dense_bytes - weight_bytes(spec, in_channels, num_classes) * spec.sparsity


def footprint_screen(spec: ArchSpec, in_channels: int, num_classes: int, budgets: Budgets, device: Device) -> Screen:
    """Exact size and arena of the untrained model converted in the spec's mode. (A spec whose
    pruned weights the runtime stores sparsely is judged on a lower bound of its size: the dense
    file less its pruned weights; its exact size is known after training.)"""
    from ..errors import CandidateFailed
    from ..measure import tflm_arena

    try:
        tflite = _untrained_tflite(spec, in_channels, num_classes)
    except CandidateFailed as exc:
        return Screen(False, "footprint", exc.reason, float("nan"), float("nan"), runs=False)
    arena = tflm_arena(tflite)
    # A crash of the untrained model says little about the trained one (TFLite Micro aborts on
    # the tiny softmax input scale of near-constant untrained logits): only a refusal, such as an
    # unsupported operator, rejects the spec here; the trained model is measured for real later.
    if device.runtime == "tflm" and not arena.compatible and not arena.crashed:
        return Screen(False, "footprint", f"TFLite Micro cannot run it: {arena.reason}", len(tflite), float("nan"), runs=False)
    ram = arena.arena_bytes if arena.compatible else activation_peak_bytes(spec, in_channels, num_classes)
    size = len(tflite)
    if spec.sparsity > 0 and device.gains_from_sparsity(spec.quantization):
        size = sparse_size_bound(spec, size, in_channels, num_classes)
    return _verdict("footprint", spec, budgets, device, size, ram, device.predict_latency_ms(spec, in_channels, num_classes))


def smallest_specs(space, device: Device) -> dict[str, list[ArchSpec]]:
    """The specs of `space` with the fewest weights ("size") and with the smallest activations and
    least work ("ram"), one per mode the device runs: every field at the option that minimises the
    figure (weights and activations grow with every width, depth, kernel and expansion choice;
    activations shrink with strides and grow with resolution)."""

    def pick(target: str, mode: str):
        def choose(name: str, options):
            field = name.split("_", 1)[1] if name.startswith("stage") else name
            if field == "quantization":
                return mode
            if field == "sparsity":
                return max(options) if target == "size" and device.gains_from_sparsity(mode) else min(options)
            if field in ("stride", "stem_stride"):
                return max(options)
            return min(options)
        return choose

    modes = [m for m in space.choices["quantization"] if device.runs(m)]
    return {target: [space.build(pick(target, mode)) for mode in modes] for target in ("size", "ram")}


def space_floor(space, in_channels: int, num_classes: int, device: Device) -> dict:
    """The smallest .tflite size, peak RAM and latency the space reaches on `device`, from its
    smallest specs converted for real (untrained: size and arena do not depend on weight values),
    the RAM as TFLite Micro allocates it where the device runs TFLite Micro."""
    from ..measure import tflm_arena

    specs = smallest_specs(space, device)
    if not specs["size"]:
        raise InfeasibleBudgetError(f"device {device.name} runs none of the space's quantization modes "
                                    f"{list(space.choices['quantization'])}; it runs {list(device.quantization)}")
    sizes = []
    for spec in specs["size"]:
        dense = len(_untrained_tflite(spec.replace(sparsity=0.0), in_channels, num_classes))
        sizes.append(sparse_size_bound(spec, dense, in_channels, num_classes) if spec.sparsity else dense)
    rams = []
    for spec in specs["ram"]:
        arena = tflm_arena(_untrained_tflite(spec, in_channels, num_classes)) if device.runtime == "tflm" else None
        rams.append(arena.arena_bytes if arena is not None and arena.compatible
                    else activation_peak_bytes(spec, in_channels, num_classes))
    latencies = [v for v in (device.predict_latency_ms(s, in_channels, num_classes) for s in specs["ram"]) if v is not None]
    fastest = min(latencies) if latencies else None
    return {"min_size_kb": min(sizes) / KB, "min_ram_kb": min(rams) / KB, "min_latency_ms": fastest,
            # one mean power per board: the least energy is the fastest model's
            "min_energy_uj": fastest * device.power_mw if fastest is not None and device.power_mw is not None else None}


def check_budgets_reachable(space, in_channels: int, num_classes: int, budgets: Budgets, device: Device) -> dict | None:
    """InfeasibleBudgetError, before any training, when no spec of the space can meet the budget;
    the space's floors when a budget was checked."""
    if all(v is None for v in (budgets.max_size_kb, budgets.max_ram_kb, budgets.max_latency_ms, budgets.max_energy_uj)):
        return None
    floor = space_floor(space, in_channels, num_classes, device)
    too_tight = []
    if budgets.max_size_kb is not None and budgets.max_size_kb < floor["min_size_kb"]:
        too_tight.append(f"max size {budgets.max_size_kb} KB (the space's smallest model needs {floor['min_size_kb']:.1f} KB "
                         "as a .tflite file)")
    if budgets.max_ram_kb is not None and budgets.max_ram_kb < floor["min_ram_kb"]:
        what = "a TFLite Micro arena of" if device.runtime == "tflm" else "activations of"
        too_tight.append(f"max RAM {budgets.max_ram_kb} KB (the space's smallest model needs {what} {floor['min_ram_kb']:.1f} KB)")
    if budgets.max_latency_ms is not None and floor["min_latency_ms"] is not None and budgets.max_latency_ms < floor["min_latency_ms"]:
        too_tight.append(f"max latency {budgets.max_latency_ms} ms on {device.name} "
                         f"(the space's fastest model is predicted at {floor['min_latency_ms']:.2f} ms)")
    if budgets.max_energy_uj is not None and floor["min_energy_uj"] is not None and budgets.max_energy_uj < floor["min_energy_uj"]:
        too_tight.append(f"max energy {budgets.max_energy_uj} uJ on {device.name} (the space's fastest model is predicted "
                         f"at {floor['min_energy_uj']:.1f} uJ per inference, {device.power_mw:.1f} mW x "
                         f"{floor['min_latency_ms']:.2f} ms)")
    if too_tight:
        raise InfeasibleBudgetError(f"no candidate of space {space.name!r} can meet {' and '.join(too_tight)}; "
                                    "raise the budget or use a smaller space")
    return floor
