"""Where does a model run? Every board of the catalog, with whether the model fits its memory and what
it costs there."""

from __future__ import annotations

from ..units import KB
from ._devices import device_names, load_device
from ._flatbuffer import parse_tflite
from ._mcu import APP_RESERVE, CATALOG_ARTIFACT

__all__ = ["runs_on", "board_devices", "board_budget_kb"]


def board_devices() -> list:
    """The catalog's microcontroller profiles."""
    devices = [load_device(name) for name in device_names()]
    return [d for d in devices if d.latency_model == CATALOG_ARTIFACT]


def board_budget_kb(capacity_kb: float | None) -> float | None:
    """What a board's SRAM or flash leaves the model after the application's reserve (APP_RESERVE)."""
    return None if capacity_kb is None else capacity_kb * (1 - APP_RESERVE)


def runs_on(tflite: bytes, arena_bytes: int | None, firmware: dict | None = None) -> list[dict]:
    """One row per catalog board: `fits` (flash holds the model and SRAM its TFLite Micro arena, after the
    application's reserve; None where the part's memory is not known), `memory`: what was judged; with
    `firmware` (a linked image measured on an Arm build: `core`, `kernels`, `flash_bytes`, `ram_bytes`),
    the boards that run TFLite Micro on that build are judged on the whole image instead. `latency_ms` with the board's
    mean and largest error for a model no board has run (`latency_error_pct`, `latency_error_max_pct`),
    `energy_uj` where the board published energy, with its mean and largest error (`energy_error_pct`,
    `energy_error_max_pct`: the latency error compounded with the power model's), and `why` when it
    does not fit or run."""
    size_kb = len(tflite) / KB
    arena_kb = arena_bytes / KB if arena_bytes is not None else None
    graph = parse_tflite(tflite)  # read once, priced on the host once, split by class on each board
    rows = []
    for device in board_devices():
        prediction = device.predict(graph)
        flash, sram = board_budget_kb(device.flash_kb), board_budget_kb(device.sram_kb)
        whole = (firmware is not None and device.runtime == "tflm"
                 and device.arm_build == (firmware["core"], firmware["kernels"]))
        if whole:
            needs = (("firmware", firmware["flash_bytes"] / KB), ("firmware", firmware["ram_bytes"] / KB))
            memory = f"the whole firmware, linked for the {firmware['core']} with TFLite Micro ({firmware['kernels']} kernels)"
        else:
            needs = (("model", size_kb), ("arena", arena_kb))
            memory = ("the model and TFLite Micro's arena (the runtime's code and state not counted)" if device.runtime == "tflm"
                      else f"the model and TFLite Micro's arena, standing in for {device.board_runtime or device.runtime}'s own")
        why = []
        if not prediction.runs:
            why.append(prediction.reason)
        (what_flash, need_flash), (what_ram, need_ram) = needs
        if flash is not None and need_flash > flash:
            why.append(f"{what_flash} {need_flash:.1f} KB > {flash:.0f} KB of flash left to it")
        if sram is not None and need_ram is not None and need_ram > sram:
            why.append(f"{what_ram} {need_ram:.1f} KB > {sram:.0f} KB of SRAM left to it")
        known = flash is not None and sram is not None and need_ram is not None
        rows.append({
            "device": device.name, "core": device.core, "clock_mhz": device.clock_mhz, "runtime": device.board_runtime,
            "fits": (not why) if (known or why) else None, "memory": memory,
            "latency_ms": round(prediction.latency_ms, 4) if prediction.runs else None,
            "latency_error_pct": round(prediction.error_pct, 1) if prediction.error_pct is not None else None,
            "latency_error_max_pct": round(prediction.error_max_pct, 1) if prediction.error_max_pct is not None else None,
            "energy_uj": round(prediction.energy_uj, 2) if prediction.energy_uj is not None else None,
            "energy_error_pct": round(prediction.energy_error_pct, 1) if prediction.energy_error_pct is not None else None,
            "energy_error_max_pct": (round(prediction.energy_error_max_pct, 1)
                                     if prediction.energy_error_max_pct is not None else None),
            "why": "; ".join(why) if why else ("" if known else "memory of this part not known"),
        })
    return sorted(rows, key=lambda r: (r["fits"] is not True, r["latency_ms"] if r["latency_ms"] is not None else 1e18))
