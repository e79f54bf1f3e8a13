"""The exported example built for this machine: TFLite Micro's library for the host (its Makefile's
default target, reference kernels, from the same pinned sources as the Arm build) and the example
linked against it with the OS's C and C++ compilers, run natively. The same golden check as on a
core, with nothing but the OS's compilers and make: what a user without the Arm toolchain runs.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DependencyError
from ._build import _COMMON, _CXX_ONLY, _MAKEFILE, _locked, _run, _tool_says, cache_root, sources
from ._sources import TFLM_COMMIT

__all__ = ["HOST", "HostLibrary", "build_host_library", "host_flags", "run_host_example"]

HOST = "host"
#: what the host build's objects are compiled with, beyond _COMMON (the Makefile's linux target)
_HOST_DEFINES = ("-DTF_LITE_USE_CTIME",)


@dataclass(frozen=True)
class HostLibrary:
    path: Path  # libtensorflow-microlite.a
    tree: Path


def _compilers() -> dict[str, str]:
    found = {tool: shutil.which(tool) for tool in ("gcc", "g++", "make")}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise DependencyError(f"building the example on this machine needs {', '.join(missing)}, not found: "
                              "`sudo apt-get install build-essential` (Debian/Ubuntu)")
    return found  # type: ignore[return-value]


def _stamp() -> dict:
    return {"tflite_micro": TFLM_COMMIT, "target": f"host ({platform.machine()})", "kernels": "reference",
            "build_type": "release_with_logs", "compiler": _tool_says(_compilers()["g++"], "--version").splitlines()[0]}


def build_host_library(*, jobs: int | None = None, progress=None) -> HostLibrary:
    """TFLite Micro's library for this machine (reference kernels), built once into the cache."""
    _compilers()
    tree = sources()
    folder = cache_root() / TFLM_COMMIT / f"host-{platform.machine()}-reference"
    library = HostLibrary(folder / "libtensorflow-microlite.a", tree)
    with _locked(folder):
        try:
            built_from = json.loads((folder / "build.json").read_text())
        except (OSError, ValueError):
            built_from = None
        if library.path.exists() and built_from == _stamp():
            return library
        if progress:
            progress("building TFLite Micro (reference kernels) for this machine: about six minutes on 2 cores, once")
        gen = folder / "gen"
        env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        _run(["make", "-s", f"-j{jobs or os.cpu_count() or 1}", "-f", _MAKEFILE, "BUILD_TYPE=release_with_logs",
              f"BASE_GENDIR={gen}", "microlite"], "building TFLite Micro for this machine", cwd=tree, env=env)
        built = list(gen.rglob("libtensorflow-microlite.a"))
        if len(built) != 1:
            raise ConfigError(f"building TFLite Micro for this machine: expected one library, found {len(built)}")
        (folder / "build.json").write_text(json.dumps(_stamp(), indent=1) + "\n")
        tmp = library.path.with_suffix(".a.part")
        shutil.copyfile(built[0], tmp)
        tmp.rename(library.path)
        shutil.rmtree(gen, ignore_errors=True)
    return library


def host_flags(library: HostLibrary, cxx: bool = True) -> list[str]:
    """Flags to compile a source against the host library (its headers and defines)."""
    downloads = library.tree / "tensorflow/lite/micro/tools/make/downloads"
    includes = [library.tree, downloads, downloads / "gemmlowp", downloads / "flatbuffers/include", downloads / "kissfft",
                downloads / "ruy"]
    return ["-O2", *_COMMON, *_HOST_DEFINES, *(_CXX_ONLY if cxx else ("-std=c99",)), *(f"-I{p}" for p in includes)]


def run_host_example(folder: Path, c_sources: list[str], *, progress=None, timeout_s: float = 300.0) -> tuple[int, str]:
    """Build the example in `folder` for this machine and run it (see `run_example`)."""
    tools = _compilers()
    library = build_host_library(progress=progress)
    with tempfile.TemporaryDirectory(prefix="nas-example-host-") as tmp:
        build, objects = Path(tmp), []
        for source in c_sources:
            objects.append(build / source.replace(".c", ".o"))
            _run([tools["gcc"], *host_flags(library, cxx=False), "-c", str(folder / source), "-o", str(objects[-1])],
                 f"compiling {source}")
        binary = build / "example"
        _run([tools["g++"], *host_flags(library), "-DNAS_GOLDEN_CHECK", f"-I{folder}", str(folder / "main.cc"),
              *map(str, objects), str(library.path), "-lm", "-o", str(binary)], "linking the example for this machine")
        try:
            done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return 124, f"the example did not finish within {timeout_s:.0f} s"
    return done.returncode, done.stdout + done.stderr
