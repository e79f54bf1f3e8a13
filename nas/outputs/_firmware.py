"""The exported model's firmware: measured on the Arm build of TFLite Micro for the board's core,
where that build is at hand, and its sources written beside the model.

The sources are those that linked: the model array (C), an op resolver registering exactly the
model's operators, the arena TFLite Micro used on the core and a minimal main (C++); where the core's
output equalled the host interpreter's, also the model's input and output details (`model_io.h`)
and that golden pair (`golden.c`), which the example (`nas firmware run`) checks itself against. Without the
Arm toolchain, or for a board whose core has no build, the card says so and why; the export does
not fail for it.
"""

from __future__ import annotations

from ..errors import NasError

__all__ = ["firmware_record"]


def firmware_record(model: bytes, core: str | None, device, explicit: bool = False) -> tuple[dict, dict[str, bytes]]:
    """The card's `firmware` entry and the files to write (`firmware/...`) for `model` on `core`,
    with the kernels the study's board runs (`Device.arm_build`; CMSIS-NN where it names none).
    Unless the core was asked for (`explicit`), only an Arm build already in the cache is used."""
    from ..firmware import CORES, is_built

    kernels = device.arm_build[1] if device.arm_build else "cmsisnn"
    if core is None:
        return {"measured": False, "why": f"{device.name} has no core the Arm build targets ({', '.join(CORES)}); "
                                          "choose one with --firmware-core"}, {}
    from ..measure import arm_measure

    if not explicit and not is_built(core, kernels):  # an export does not fetch and build for minutes unasked
        return {"measured": False, "core": core, "why": f"the Arm build for the {core} ({kernels} kernels) is not set up: "
                                                        "`make arm`, or --firmware-core to build it now"}, {}
    try:
        m = arm_measure(model, core, kernels)
    except (NasError, OSError) as exc:  # no toolchain, no sources, a cache it cannot write: the export stands without it
        return {"measured": False, "core": core, "why": f"{exc} (`make arm` sets the Arm build up)"}, {}
    if m.count.instructions is None or m.firmware is None:
        return {"measured": False, "core": core, "why": m.count.reason or m.host_note}, {}
    runs_it = device.runtime == "tflm"
    record = {
        "measured": True, "core": core, "kernels": kernels,
        "runtime": f"TFLite Micro 90b983c2b with {'CMSIS-NN' if kernels == 'cmsisnn' else 'its reference'} kernels"
                   + ("" if runs_it else
                   f" (the study's board runs {device.board_runtime or device.runtime}: its own runtime's footprint differs)"),
        "instructions": m.count.instructions, "flash_bytes": m.firmware_flash_bytes, "ram_bytes": m.firmware_ram_bytes,
        "static_ram_bytes": m.firmware_static_ram_bytes, "stack_bytes": m.count.stack_bytes,
        "arena_bytes": m.firmware_arena_bytes, "arena_used_bytes": m.count.arena_bytes,
        "outputs_match_host": m.outputs_match_host,
        "operators": list(m.firmware.operators), "sources": "firmware/",
    }
    return record, {f"firmware/{name}": text.encode() for name, text in m.firmware.files.items()}
