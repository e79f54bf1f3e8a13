"""The exported model's firmware: sources an embedded project compiles, always written, and where
the Arm build for the board's core is at hand, measured on it.

The sources: the model array (C), an op resolver registering exactly the model's operators, the
arena, a minimal main (C++), the model's input and output details (`model_io.h`) and, where the host
TFLite Micro interpreter runs the model, a golden pair from a raw test image: the image, its
preprocessing as C (`preprocess.c`), the model input the Python pipeline makes of it and the host
interpreter's output for that input. `nas firmware run DIR --core host` builds the example on this
machine and checks all of it; where the core's output equalled the host's, `--core CORE` does the
same under QEMU. Without the Arm toolchain, or for a board whose core has no build, the card says
so and why; the export does not fail for it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ..errors import NasError

__all__ = ["firmware_record", "golden_pair"]


def golden_pair(model: bytes, raw, label: str = ""):
    """The golden pair (`nas.firmware.Golden`) from one raw image (uint8, height x width x channels,
    as the dataset stores it): the model input the Python pipeline makes of it (`nas.data.prepare`
    at the model's input size, then the input's quantization) and the host TFLite Micro
    interpreter's output for it; None where that interpreter does not run the model."""
    from ..data import prepare
    from ..firmware import Golden
    from ..measure import HostTflm, quantize_input

    host = HostTflm(model)
    try:
        if host.error:
            return None
        detail = host.input
        x = quantize_input(prepare(raw[None], int(detail["shape"][1]), int(detail["shape"][3])),
                           {"dtype": detail["dtype"], "quantization": (detail.get("scale"), detail.get("zero_point"))})
        y = host.outputs(x.reshape(detail["shape"]))
        if isinstance(y, str):
            return None
        return Golden(x.tobytes(), y, {"input": detail, "output": host.output}, raw.tobytes(), tuple(raw.shape),
                      f" (class {label})" if label else "")
    finally:
        host.close()


def _host_command(folder: Path) -> str:
    return f"nas firmware run {shlex.quote(str(folder))} --core host"


def firmware_record(model: bytes, core: str | None, device, explicit: bool = False, *, golden=None,
                    host_arena_bytes: int | None = None, folder: Path = Path("firmware")) -> tuple[dict, dict[str, bytes]]:
    """The card's `firmware` entry and the files to write (`firmware/...`) for `model` on `core`,
    with the kernels the study's board runs (`Device.arm_build`; CMSIS-NN where it names none).
    `golden`: the golden pair (`nas.firmware.Golden`), None where the host interpreter cannot run
    the model; `host_arena_bytes`: the arena it ran in on this machine; `folder`: where the files
    will be (for the commands the card prints). Unless the core was asked for (`explicit`), only
    an Arm build already in the cache is used."""
    from ..firmware import CORES, firmware_sources, is_built
    from ..latency import parse_tflite

    kernels = device.arm_build[1] if device.arm_build else "cmsisnn"
    host: dict = {"sources": "firmware/"}
    if golden is not None and host_arena_bytes:
        host["build_and_run_host"] = _host_command(folder)
    if core is None:
        why = (f"{device.name} has no core the Arm build targets ({', '.join(CORES)}); choose one with --firmware-core")
    elif not explicit and not is_built(core, kernels):  # an export does not fetch and build for minutes unasked
        why = f"the Arm build for the {core} ({kernels} kernels) is not set up: `make arm`, or --firmware-core to build it now"
    else:
        why, m = _measure(model, core, kernels, golden)
        if not why:
            return _measured(model, m, core, kernels, device, golden, host_arena_bytes, host, folder)
    record = {"measured": False, **({"core": core} if core else {}), "why": why, **host}
    if not host_arena_bytes:
        return {k: v for k, v in record.items() if k != "sources"}, {}
    names = [op.name for op in parse_tflite(model).operators]
    sources = firmware_sources(model, list(dict.fromkeys(names)), None, golden=golden, host_arena_bytes=host_arena_bytes)
    return record, {f"firmware/{name}": text.encode() for name, text in sources.files.items()}


def _measure(model: bytes, core: str, kernels: str, golden):
    import numpy as np

    from ..measure import arm_measure

    x = None
    if golden is not None:
        detail = golden.io["input"]
        x = np.frombuffer(golden.input, np.dtype(detail["dtype"])).reshape(detail["shape"])
    try:
        m = arm_measure(model, core, kernels, x=x)
    except (NasError, OSError) as exc:  # no toolchain, no sources, a cache it cannot write: the export stands without it
        return f"{exc} (`make arm` sets the Arm build up)", None
    if m.count.instructions is None or m.firmware is None:
        return m.count.reason or m.host_note, None
    return "", m


def _measured(model, m, core, kernels, device, golden, host_arena_bytes, host, folder) -> tuple[dict, dict[str, bytes]]:
    from ..firmware import firmware_sources

    runs_it = device.runtime == "tflm"
    names = [o.name for o in m.count.operators]
    same = m.outputs_match_host is True
    sources = firmware_sources(model, list(dict.fromkeys(names)), m.firmware_arena_bytes, golden=golden,
                               host_arena_bytes=host_arena_bytes)
    record = {
        "measured": True, "core": core, "kernels": kernels,
        "runtime": f"TFLite Micro 90b983c2b with {'CMSIS-NN' if kernels == 'cmsisnn' else 'its reference'} kernels"
                   + ("" if runs_it else
                   f" (the study's board runs {device.board_runtime or device.runtime}: its own runtime's footprint differs)"),
        "instructions": m.count.instructions, "flash_bytes": m.firmware_flash_bytes, "ram_bytes": m.firmware_ram_bytes,
        "static_ram_bytes": m.firmware_static_ram_bytes, "stack_bytes": m.count.stack_bytes,
        "arena_bytes": m.firmware_arena_bytes, "arena_used_bytes": m.count.arena_bytes,
        "outputs_match_host": m.outputs_match_host,
        "operators": list(sources.operators), **host,
    }
    if golden is not None and same:  # the golden output is the core's too: the example passes under QEMU
        record["build_and_run"] = f"nas firmware run {shlex.quote(str(folder))} --core {core} --kernels {kernels}"
    return record, {f"firmware/{name}": text.encode() for name, text in sources.files.items()}
