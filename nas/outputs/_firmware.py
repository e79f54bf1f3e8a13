"""The exported model's firmware: measured on the Arm build of TFLite Micro for the board's core,
where that build is at hand, and its sources written beside the model.

The sources are those that linked: the model array (C), an op resolver registering exactly the
model's operators, the arena TFLite Micro used on the core and a minimal main (C++). Without the
Arm toolchain, or for a board whose core has no build, the card says so and why; the export does
not fail for it.
"""

from __future__ import annotations

from ..errors import NasError

__all__ = ["firmware_record", "board_core", "board_kernels"]


def board_kernels(device) -> str:
    """The kernel set a board's TFLite Micro runs: the reference kernels for plain TFLite Micro
    (runtime family `tflm`), CMSIS-NN otherwise (the CMSIS-NN ports, and as the stand-in for
    runtimes that are not TFLite Micro)."""
    return "reference" if device.runtime_family == "tflm" else "cmsisnn"


def board_core(device) -> str | None:
    """The Arm build's core for a board profile (its `core`: Cortex-M4 -> cortex-m4), None if none is built."""
    from ..firmware import CORES

    name = (device.core or "").lower().replace("+", "p").replace(" ", "")
    return name if name in CORES else None


def firmware_record(model: bytes, core: str | None, device) -> tuple[dict, dict[str, bytes]]:
    """The card's `firmware` entry and the files to write (`firmware/...`) for `model` on `core`,
    with the kernels the study's board runs (`board_kernels`)."""
    from ..firmware import CORES

    kernels = board_kernels(device)

    if core is None:
        return {"measured": False, "why": f"{device.name} has no core the Arm build targets ({', '.join(CORES)}); "
                                          "choose one with --firmware-core"}, {}
    from ..measure import arm_measure

    try:
        m = arm_measure(model, core, kernels)
    except NasError as exc:  # no toolchain, no sources: the export stands without the firmware
        return {"measured": False, "core": core, "why": f"{exc} (`make arm` sets the Arm build up)"}, {}
    if m.count.instructions is None:
        return {"measured": False, "core": core, "why": m.count.reason}, {}
    runs_it = device.runtime == "tflm"
    record = {
        "measured": True, "core": core, "kernels": kernels,
        "runtime": f"TFLite Micro 90b983c2b with {'CMSIS-NN' if kernels == 'cmsisnn' else 'its reference'} kernels"
                   + ("" if runs_it else
                   f" (the study's board runs {device.board_runtime or device.runtime}: its own runtime's footprint differs)"),
        "instructions": m.count.instructions, "flash_bytes": m.firmware_flash_bytes, "ram_bytes": m.firmware_ram_bytes,
        "static_ram_bytes": m.firmware_static_ram_bytes, "stack_bytes": m.count.stack_bytes,
        "arena_bytes": m.count.arena_bytes, "outputs_match_host": m.outputs_match_host,
        "operators": list(m.firmware.operators), "sources": "firmware/",
    }
    return record, {f"firmware/{name}": text.encode() for name, text in m.firmware.files.items()}
