"""A model's firmware: the sources an embedded project compiles (model array, an op resolver with
exactly the model's operators, the arena, a minimal main) and the image they link to for a core,
with its flash and RAM.

The sources compile as C (the model array) and C++ (the rest) with GCC and Clang. The image links
them against the core's TFLite Micro library with newlib-nano and `--gc-sections`, as a firmware
project does, so its sections are what a board's flash and RAM hold: the runtime, the kernels the
resolver registers, the model and the arena. TFLite Micro's log goes to `nas_log_write`, a weak
function the application replaces (a UART write); the image's log formatter is newlib-nano's.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ._build import Library, _run, build_library, compile_flags

__all__ = ["FirmwareSources", "Golden", "firmware_sources", "resolver_methods", "Footprint", "link_footprint", "run_example"]

_RESOLVER_HEADER = "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#: operators whose registration name does not follow from the operator's name
_SPECIAL = {"TFLite_Detection_PostProcess": "AddDetectionPostprocess"}


def resolver_methods(tree: Path | None = None) -> dict[str, str]:
    """`MicroMutableOpResolver`'s Add methods, by normalized operator name (CONV_2D -> conv2d -> AddConv2D):
    read from the TFLite Micro `tree`, or without one, the list of the pinned commit's that ships here."""
    if tree is not None:
        names = re.findall(r"TfLiteStatus Add(\w+)\(", (tree / _RESOLVER_HEADER).read_text())
    else:
        text = (Path(__file__).with_name("src") / "resolver_methods.txt").read_text()
        names = [line[3:] for line in text.splitlines() if line.startswith("Add")]
    return {name.lower(): f"Add{name}" for name in names}


def _method(op: str, methods: dict[str, str]) -> str:
    if op in _SPECIAL:
        return _SPECIAL[op]
    key = op.replace("_", "").lower()
    if key not in methods:
        raise ConfigError(f"TFLite Micro's op resolver has no kernel for {op}")
    return methods[key]


@dataclass(frozen=True)
class FirmwareSources:
    files: dict[str, str]  # file name -> text
    arena_bytes: int
    operators: tuple[str, ...]  # the Add methods the resolver calls

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name, text in self.files.items():
            (folder / name).write_text(text)
            out.append(folder / name)
        return out


def _array(model: bytes) -> str:
    rows = (", ".join(f"0x{b:02x}" for b in model[i:i + 16]) for i in range(0, len(model), 16))
    return ",\n  ".join(rows)


def _c_array(name: str, data: bytes) -> str:
    return (f"__attribute__((aligned(16))) const unsigned char {name}[] = {{\n  {_array(data) or '0'}\n}};\n"
            f"const unsigned int {name}_len = {len(data)}u;\n")


def _io_header(io: dict) -> str:
    """The model's first input and output as C/C++ constants: shape, type, scale and zero point (how a
    real value x maps to the tensor: q = round(x / scale) + zero_point)."""
    lines = ["#ifndef NAS_MODEL_IO_H_", "#define NAS_MODEL_IO_H_", "",
             "// The model's first input and output tensors, as the host TFLite Micro interpreter read them.", ""]
    for which, detail in (("INPUT", io["input"]), ("OUTPUT", io["output"])):
        shape = ", ".join(str(int(d)) for d in detail["shape"])
        lines += [f"#define NAS_{which}_TYPE \"{detail['dtype']}\"", f"#define NAS_{which}_RANK {len(detail['shape'])}",
                  f"static const int nas_{which.lower()}_shape[] = {{{shape}}};"]
        if detail.get("scale") is not None:
            lines += [f"#define NAS_{which}_SCALE {detail['scale']!r}f", f"#define NAS_{which}_ZERO_POINT {detail['zero_point']}"]
        if detail["dtype"].startswith("float"):
            lines.append(f"#define NAS_{which}_FLOAT 1")
        lines.append("")
    return "\n".join(lines + ["#endif  // NAS_MODEL_IO_H_", ""])


@dataclass(frozen=True)
class Golden:
    """An input and the output the host TFLite Micro interpreter computed for it; where it starts
    from a raw image (`raw`, height x width x channels uint8), that image, whose preprocessing the
    example checks too (`preprocess.c`)."""

    input: bytes
    output: bytes
    io: dict  # {"input": details, "output": details}: shape, dtype, scale, zero_point
    raw: bytes | None = None
    raw_shape: tuple[int, int, int] | None = None
    label: str = ""  # what the raw image is (its class), for the reader


def _golden_files(golden: Golden) -> dict[str, str]:
    from ._preprocess import preprocess_sources

    raw = golden.raw is not None
    header = ("#ifndef NAS_GOLDEN_H_\n#define NAS_GOLDEN_H_\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
              "// An input, and the output the host TFLite Micro interpreter computed for it: main.cc, built with\n"
              "// NAS_GOLDEN_CHECK defined, runs the input and checks the output against it.\n"
              + (f"// The input is the preprocessing (preprocess.c) of a raw image of the test split{golden.label}:\n"
                 "// the example preprocesses it too, and checks that against the input first.\n"
                 "#define NAS_GOLDEN_RAW 1\nextern const unsigned char g_golden_raw[];\n" if raw else "")
              + "extern const unsigned char g_golden_input[];\nextern const unsigned int g_golden_input_len;\n"
              "extern const unsigned char g_golden_output[];\nextern const unsigned int g_golden_output_len;\n\n"
              "#ifdef __cplusplus\n}\n#endif\n\n#endif  // NAS_GOLDEN_H_\n")
    data = ('#include "golden.h"\n\n' + (_c_array("g_golden_raw", golden.raw) if raw else "")
            + _c_array("g_golden_input", golden.input) + _c_array("g_golden_output", golden.output))
    files = {"model_io.h": _io_header(golden.io), "golden.h": header, "golden.c": data}
    if raw:
        files.update(preprocess_sources(golden.raw_shape, golden.io["input"]))
    return files


def _arena_line(arena_bytes: int | None, host_arena_bytes: int | None) -> str:
    """`kArenaBytes`: on a core, the arena it ran in there (`arena_bytes`, None where no core ran it); on
    a 64-bit machine, the one the host interpreter ran it in, plus 1 KB: that interpreter (the
    tflite-micro package) is not the pinned build the example links."""
    host = None if host_arena_bytes is None else -(-(host_arena_bytes + 1024) // 16) * 16
    if arena_bytes is None:
        return ("// Measured on this machine only (64-bit, reference kernels), plus 1 KB: a core's arena differs (CMSIS-NN\n"
                "// kernels take scratch buffers in it); `nas export --firmware-core CORE` measures it there.\n"
                f"constexpr size_t kArenaBytes = {host};\n")
    core = -(-arena_bytes // 16) * 16
    if host is None:
        return f"constexpr size_t kArenaBytes = {core};\n"
    return ("#if UINTPTR_MAX > 0xFFFFFFFFu  // the example on a 64-bit machine (reference kernels, 8-byte pointers)\n"
            f"constexpr size_t kArenaBytes = {host};\n#else\nconstexpr size_t kArenaBytes = {core};\n#endif\n")


def firmware_sources(model: bytes, operators: list[str] | tuple[str, ...], arena_bytes: int | None, tree: Path | None = None,
                     golden: Golden | None = None, host_arena_bytes: int | None = None) -> FirmwareSources:
    """The firmware sources for `model`: `operators` are its operator names (CONV_2D, ...), and
    `arena_bytes` an arena in which it allocates and runs on the core (the runner finds the smallest,
    `nas.measure.arm_count`), rounded up to 16 bytes; `host_arena_bytes`, where given, the one it ran
    in on this 64-bit host, which a 64-bit build of the sources uses (and every build, where
    `arena_bytes` is None: no core ran it). `tree`: the TFLite Micro tree whose
    op resolver names the registrations (None: the pinned commit's, as shipped). With `golden`, also
    `model_io.h`, the golden pair (`golden.c`) and, from a raw image, the preprocessing (`preprocess.c`),
    which main.cc checks itself against when built with NAS_GOLDEN_CHECK (`run_example`); the image
    `link_footprint` measures holds none of them."""
    methods = resolver_methods(tree)
    adds = tuple(dict.fromkeys(_method(op, methods) for op in operators))
    if arena_bytes is None and host_arena_bytes is None:
        raise ValueError("firmware_sources needs the arena the model ran in: on the core, on this machine, or both")
    arena = -(-(arena_bytes if arena_bytes is not None else host_arena_bytes + 1024) // 16) * 16
    header = ("#ifndef NAS_MODEL_DATA_H_\n#define NAS_MODEL_DATA_H_\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
              "// The model, 16-byte aligned as TFLite Micro requires.\nextern const unsigned char g_model[];\n"
              "extern const unsigned int g_model_len;\n\n#ifdef __cplusplus\n}\n#endif\n\n#endif  // NAS_MODEL_DATA_H_\n")
    data = (f'#include "model_data.h"\n\n__attribute__((aligned(16))) const unsigned char g_model[] = {{\n  {_array(model)}\n}};\n'
            f"const unsigned int g_model_len = {len(model)}u;\n")
    registrations = "\n".join(f"  TF_LITE_ENSURE_STATUS(resolver.{add}());" for add in adds)
    ops = (f'#ifndef NAS_MODEL_OPS_H_\n#define NAS_MODEL_OPS_H_\n\n#include <cstddef>\n#include <cstdint>\n\n#include "{_RESOLVER_HEADER}"\n\n'
           f"// Exactly the model's operators: each registration links its kernel into the image.\n"
           f"using ModelOpResolver = tflite::MicroMutableOpResolver<{len(adds)}>;\n\n"
           f"inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {{\n{registrations}\n  return kTfLiteOk;\n}}\n\n"
           "// The arena this model allocated and ran in (TFLite Micro's own figure misses the allocator's\n"
           "// temporary peak; this one was run). Leave headroom if your allocator differs.\n"
           f"{_arena_line(arena_bytes, host_arena_bytes)}\n#endif  // NAS_MODEL_OPS_H_\n")
    main = (Path(__file__).with_name("src") / "nas_firmware_main.cc").read_text()
    files = {"model_data.h": header, "model_data.c": data, "model_ops.h": ops, "main.cc": main}
    return FirmwareSources({**files, **(_golden_files(golden) if golden else {})}, arena, adds)


@dataclass(frozen=True)
class Footprint:
    flash_bytes: int  # code, read-only data (the model among it) and the initial values of .data
    static_ram_bytes: int  # .data and .bss: the arena and the runtime's static state
    sections: dict[str, int]


def _sections(elf: Path) -> tuple[int, int, dict[str, int]]:
    listing = _run(["arm-none-eabi-objdump", "-h", str(elf)], "objdump -h")
    flash = ram = 0
    sizes: dict[str, int] = {}
    lines = listing.splitlines()
    for head, flags in zip(lines, lines[1:]):
        match = re.match(r"\s*\d+\s+(\S+)\s+([0-9a-f]+)\s", head)
        if not match or "ALLOC" not in flags:
            continue
        name, size = match.group(1), int(match.group(2), 16)
        sizes[name] = size
        if "LOAD" in flags:
            flash += size
        if "READONLY" not in flags:
            ram += size
    return flash, ram, sizes


def link_footprint(sources: FirmwareSources, core: str, kernels: str) -> Footprint:
    """Compile and link `sources` for `core` and measure the image's sections."""
    library: Library = build_library(core, kernels)
    with tempfile.TemporaryDirectory(prefix="nas-firmware-") as tmp:
        folder = Path(tmp)
        sources.write(folder)
        elf = folder / "firmware.elf"
        c_obj = folder / "model_data.o"
        _run(["arm-none-eabi-gcc", *compile_flags(library, cxx=False), "-c", str(folder / "model_data.c"), "-o", str(c_obj)],
             "compiling model_data.c")
        _run(["arm-none-eabi-g++", *compile_flags(library), f"-I{folder}", "--specs=nano.specs", "--specs=nosys.specs",
              "-Wl,--gc-sections", str(folder / "main.cc"), str(c_obj), str(library.path), "-lm", "-o", str(elf)],
             f"linking the firmware for {core}")
        flash, ram, sizes = _sections(elf)
    return Footprint(flash, ram, sizes)


def run_example(folder: Path, core: str, kernels: str, *, progress=None, timeout_s: float = 600.0) -> tuple[int, str]:
    """Build the example firmware in `folder` (sources `firmware_sources` wrote with a golden pair) for
    `core` against TFLite Micro's library (built first if the cache lacks it), and run it under QEMU,
    or for `core` "host" on this machine (`_host`, reference kernels): one inference of the golden
    input, its output checked against the host's (and the raw image's preprocessing, where the pair
    has one). Returns the exit status (0: passed) and what the example printed."""
    import subprocess

    from ._build import require_toolchain, semihosting_for_user_mode
    from ._host import HOST, run_host_example

    missing = [name for name in ("model_data.c", "golden.c", "main.cc", "model_ops.h", "model_io.h") if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder} is not an exported firmware folder with a golden check: no {', '.join(missing)}")
    c_sources = ["model_data.c", "golden.c"] + (["preprocess.c"] if (folder / "preprocess.c").is_file() else [])
    if core == HOST:
        return run_host_example(folder, c_sources, progress=progress)
    qemu = require_toolchain()["qemu-arm"]
    library = build_library(core, kernels, progress=progress)
    with tempfile.TemporaryDirectory(prefix="nas-example-") as tmp:
        build, objects = Path(tmp), []
        for source in c_sources:
            objects.append(build / source.replace(".c", ".o"))
            _run(["arm-none-eabi-gcc", *compile_flags(library, cxx=False), "-c", str(folder / source), "-o", str(objects[-1])],
                 f"compiling {source}")
        elf = build / "example.elf"
        _run(["arm-none-eabi-g++", *compile_flags(library), "-DNAS_GOLDEN_CHECK", f"-I{folder}", "--specs=rdimon.specs",
              "-Wl,--gc-sections", str(folder / "main.cc"), *map(str, objects), str(library.path), "-lm", "-o", str(elf)],
             f"linking the example for {core}")
        semihosting_for_user_mode(elf)  # its printf reaches the terminal through QEMU's user-mode semihosting
        try:
            done = subprocess.run([qemu, "-cpu", "max", str(elf)], capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return 124, f"the example did not finish within {timeout_s:.0f} s under QEMU"
    return done.returncode, done.stdout + done.stderr
