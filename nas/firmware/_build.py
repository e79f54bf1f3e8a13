"""Building the Arm side: TFLite Micro's library per core and kernel set, the runner that measures a
model under emulation, and the emulator's instruction-counting plugin.

Everything built lands in one cache folder (`NAS_ARM_CACHE`, else `$XDG_CACHE_HOME/tinyml-nas/arm`,
else `~/.cache/tinyml-nas/arm`), keyed by TFLite Micro's commit, core and kernel set, and is built
once: a file lock keeps two processes from building the same thing, and a build is renamed into
place only when complete.

The library is TFLite Micro's own `microlite` target (`TARGET=cortex_m_qemu`, its source lists,
optimization levels and defines) with the core's code-generation flags in place of that target's
soft-float Cortex-M4 ones; the OS's `arm-none-eabi-gcc` compiles it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError, DependencyError
from ._cores import Core, check_kernels, core as core_named
from ._sources import TFLM_COMMIT, fetch_sources

__all__ = ["cache_root", "require_toolchain", "Library", "build_library", "is_built", "Runner", "build_runner", "build_plugin",
           "compile_flags", "qemu_version", "CACHE_ENV", "APT_PACKAGES"]

CACHE_ENV = "NAS_ARM_CACHE"
APT_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-user build-essential patch"
_SRC = Path(__file__).with_name("src")
_MAKEFILE = "tensorflow/lite/micro/tools/make/Makefile"
#: the defines and flags TFLite Micro's Makefile compiles every object with (release_with_logs, cortex_m_qemu)
_COMMON = ("-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-DTF_LITE_MCU_DEBUG_LOG", "-DNDEBUG",
           "-funsigned-char", "-fomit-frame-pointer", "-ffunction-sections", "-fdata-sections",
           "-fno-unwind-tables", "-fno-asynchronous-unwind-tables")
_CXX_ONLY = ("-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics", "-std=c++17")


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinyml-nas" / "arm"


def require_toolchain(emulator: bool = True) -> dict[str, str]:
    """Paths of the tools the Arm build needs; DependencyError naming the OS packages otherwise."""
    wanted = ["arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size", "arm-none-eabi-nm", "arm-none-eabi-objdump",
              "make", "gcc"] + (["qemu-arm"] if emulator else [])
    found = {tool: shutil.which(tool) for tool in wanted}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise DependencyError(f"the Arm build needs {', '.join(missing)}, not found: `sudo apt-get install {APT_PACKAGES}` "
                              "(Debian/Ubuntu; make and gcc come with build-essential)")
    return found  # type: ignore[return-value]


@contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, cwd: Path | None = None, env: dict | None = None, timeout_s: float = 3600) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"{what} took more than {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-12:])
        raise ConfigError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


@lru_cache(maxsize=None)
def _tool_says(tool: str, flag: str) -> str:
    """What an installed tool prints for `flag` (its version, its options), asked once a process:
    every count checks the library's stamp and the emulator, and a calibration counts hundreds."""
    return _run([tool, flag], f"{Path(tool).name} {flag}")


def sources() -> Path:
    """TFLite Micro and its downloads, fetched and verified once."""
    root = cache_root() / TFLM_COMMIT
    with _locked(root):
        return fetch_sources(root / "src")


@dataclass(frozen=True)
class Library:
    core: Core
    kernels: str  # "cmsisnn" | "reference"
    path: Path  # libtensorflow-microlite.a
    tree: Path  # the TFLite Micro tree it was built from (its headers)

    @property
    def folder(self) -> Path:
        return self.path.parent


def compile_flags(library: Library, cxx: bool = True) -> list[str]:
    """Flags to compile a source of one's own against `library` (its headers, defines and core)."""
    tree, downloads = library.tree, library.tree / "tensorflow/lite/micro/tools/make/downloads"
    includes = [tree, downloads, downloads / "gemmlowp", downloads / "flatbuffers/include", downloads / "kissfft",
                downloads / "ruy", downloads / "cmsis_nn", downloads / "cmsis_nn/Include",
                downloads / "cmsis/CMSIS/Core/Include"]
    defines = ["-DCMSIS_NN"] if library.kernels == "cmsisnn" else []
    return [*library.core.flags, "-O2", *_COMMON, *defines, *(_CXX_ONLY if cxx else ()), *(f"-I{p}" for p in includes)]


def build_library(core: str, kernels: str, *, jobs: int | None = None, progress=None) -> Library:
    """TFLite Micro's library for one core and kernel set, built once into the cache."""
    target, kernels = core_named(core), check_kernels(kernels)
    require_toolchain(emulator=False)
    tree = sources()
    folder = cache_root() / TFLM_COMMIT / f"{target.name}-{kernels}"
    library = Library(target, kernels, folder / "libtensorflow-microlite.a", tree)
    with _locked(folder):
        if library.path.exists() and _stamp(folder) == _build_stamp(target, kernels):
            return library
        if progress:
            progress(f"building TFLite Micro ({kernels}) for {target.name}: several minutes, once")
        gen = folder / "gen"
        env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        platform = " ".join(("-DTF_LITE_MCU_DEBUG_LOG", *target.flags, "-funsigned-char", "-fomit-frame-pointer"))
        cmd = ["make", "-s", f"-j{jobs or os.cpu_count() or 1}", "-f", _MAKEFILE, "TARGET=cortex_m_qemu",
               f"TARGET_ARCH={target.mcpu}", "BUILD_TYPE=release_with_logs", f"BASE_GENDIR={gen}",
               f"PLATFORM_FLAGS={platform}", "microlite"]
        if kernels == "cmsisnn":
            cmd.insert(-1, "OPTIMIZED_KERNEL_DIR=cmsis_nn")
        _run(cmd, f"building TFLite Micro for {target.name} ({kernels})", cwd=tree, env=env)
        built = list(gen.rglob("libtensorflow-microlite.a"))
        if len(built) != 1:
            raise ConfigError(f"building TFLite Micro for {target.name}: expected one library, found {len(built)}")
        (folder / "build.json").write_text(json.dumps(_build_stamp(target, kernels), indent=1) + "\n")
        tmp = library.path.with_suffix(".a.part")
        shutil.copyfile(built[0], tmp)
        tmp.rename(library.path)
        shutil.rmtree(gen, ignore_errors=True)
    return library


def _build_stamp(target: Core, kernels: str) -> dict:
    """What a library was built from: a cached one built otherwise is rebuilt."""
    compiler = _tool_says(require_toolchain(emulator=False)["arm-none-eabi-gcc"], "--version").splitlines()[0]
    return {"tflite_micro": TFLM_COMMIT, "core": target.name, "kernels": kernels, "flags": list(target.flags),
            "build_type": "release_with_logs", "compiler": compiler}


def _stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "build.json").read_text())
    except (OSError, ValueError):
        return None


def is_built(core: str, kernels: str) -> bool:
    """Whether the cache holds this core's library for this kernel set (nothing is fetched or built)."""
    try:
        require_toolchain()
    except DependencyError:
        return False
    target = core_named(core)
    folder = cache_root() / TFLM_COMMIT / f"{target.name}-{check_kernels(kernels)}"
    return (folder / "libtensorflow-microlite.a").exists() and _stamp(folder) == _build_stamp(target, kernels)


@dataclass(frozen=True)
class Runner:
    library: Library
    elf: Path
    begin_at: int  # address of nas_begin (the counter's marks)
    end_at: int


def _symbol(elf: Path, name: str) -> int:
    for line in _run(["arm-none-eabi-nm", str(elf)], "nm").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise ConfigError(f"{elf.name}: no symbol {name}")


def semihosting_for_user_mode(elf: Path) -> int:
    """Rewrite each Thumb semihosting call `bkpt 0xab` into `svc 0xab`, the form QEMU's Linux user
    mode serves (it runs the code as an A-profile CPU, where M-profile's bkpt form is not a
    semihosting call). Only instructions the disassembler shows are touched. Returns how many."""
    data = bytearray(elf.read_bytes())
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    sections = []
    for i in range(shnum):
        _, kind, flags, addr, offset, size = struct.unpack_from("<IIIIII", data, shoff + i * shentsize)
        if kind == 1 and flags & 0x4:  # PROGBITS, executable
            sections.append((addr, offset, size))
    listing = _run(["arm-none-eabi-objdump", "-d", str(elf)], "objdump")
    patched = 0
    for match in re.finditer(r"^\s*([0-9a-f]+):\s+beab\s+bkpt\s+0x00ab", listing, re.M):
        address = int(match.group(1), 16)
        for addr, offset, size in sections:
            if addr <= address < addr + size:
                at = offset + address - addr
                if data[at:at + 2] != b"\xab\xbe":
                    raise ConfigError(f"{elf.name}: unexpected bytes at {address:#x}")
                data[at:at + 2] = b"\xab\xdf"
                patched += 1
    elf.write_bytes(bytes(data))
    return patched


def build_runner(core: str, kernels: str, *, progress=None) -> Runner:
    """The measuring runner (`src/nas_runner.cc`, every operator registered) linked for one core and
    kernel set, its semihosting calls in user-mode form."""
    library = build_library(core, kernels, progress=progress)
    source = _SRC / "nas_runner.cc"
    built = library.path.stat()  # a rebuilt library, or another runner source, links a runner of its own
    digest = hashlib.sha256(source.read_bytes() + f" {built.st_size} {built.st_mtime_ns}".encode()).hexdigest()[:12]
    elf = library.folder / f"nas_runner-{digest}.elf"  # never replaced: a running emulator may be reading it
    with _locked(library.folder):
        if not elf.exists():
            tmp = elf.with_suffix(".part")
            _run(["arm-none-eabi-g++", *compile_flags(library), "--specs=rdimon.specs", "-Wl,--gc-sections",
                  str(source), str(library.path), "-lm", "-o", str(tmp)], f"linking the runner for {core} ({kernels})")
            if semihosting_for_user_mode(tmp) == 0:
                raise ConfigError(f"the runner for {core} has no semihosting calls: it could not read its model")
            tmp.rename(elf)
    begin_at, end_at = _marks(str(elf), elf.stat().st_mtime_ns)
    return Runner(library, elf, begin_at, end_at)


@lru_cache(maxsize=None)
def _marks(elf: str, mtime_ns: int) -> tuple[int, int]:
    """The runner's mark addresses, read once per linked runner (a calibration counts hundreds of models)."""
    return _symbol(Path(elf), "nas_begin"), _symbol(Path(elf), "nas_end")


def qemu_version() -> tuple[int, int]:
    out = _tool_says(require_toolchain()["qemu-arm"], "--version")
    match = re.search(r"version (\d+)\.(\d+)", out)
    if not match:
        raise ConfigError(f"cannot read qemu-arm's version from {out.strip()[:80]!r}")
    return int(match.group(1)), int(match.group(2))


def build_plugin() -> Path:
    """The instruction-counting plugin, built with the host's C compiler for the installed QEMU.

    It uses only calls that every plugin API version has (a callback per translated block, one per
    marked instruction); QEMU 9 dropped API version 1, so it declares 2 there."""
    tools = require_toolchain()
    major, minor = qemu_version()
    if (major, minor) < (6, 1):  # plugin arguments as key=value, plugin API version 1 at least
        raise DependencyError(f"qemu-arm {major}.{minor} is too old for the instruction counter: it needs QEMU 6.1 or later")
    if "-plugin" not in _tool_says(tools["qemu-arm"], "-h"):
        raise DependencyError(f"{tools['qemu-arm']} is built without plugin support (a static build, as Debian's "
                              "qemu-user is from 9.1 on): install a dynamically linked qemu-user (qemu-user-dynamic "
                              "or qemu-user-binfmt where it is one) or build QEMU with --enable-plugins")
    folder = cache_root() / f"plugin-qemu{major}.{minor}"
    out = folder / "nas_icount_plugin.so"
    source = _SRC / "nas_icount_plugin.c"
    with _locked(folder):
        if not out.exists() or out.stat().st_mtime < source.stat().st_mtime:
            tmp = folder / "nas_icount_plugin.part.so"
            _run([tools["gcc"], "-O2", "-shared", "-fPIC", "-fvisibility=hidden",
                  f"-DNAS_PLUGIN_VERSION={2 if major >= 9 else 1}", str(source), "-o", str(tmp)],
                 "building the instruction-counting plugin")
            tmp.rename(out)
    return out
