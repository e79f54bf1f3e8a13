"""The Arm (Cortex-M) build of TFLite Micro: its sources, libraries per core, the measuring
runner and counter, and a model's firmware.

    CORES, KERNELS, core, Core                   the cores built for and the kernel sets (`_cores`)
    fetch_sources, SOURCES, TFLM_COMMIT          the pinned sources, fetched and verified (`_sources`)
    build_library, build_runner, build_plugin    TFLite Micro per core and kernel set, the runner that
                                                 measures a model, the emulator's counter (`_build`)
    require_toolchain, cache_root, APT_PACKAGES  the OS tools it needs, where builds are kept
    firmware_sources, link_footprint             a model's firmware sources and its linked image (`_image`)
    Golden, run_example                          ... its golden pair; the example built from them and run under
                                                 QEMU, or on this machine (`_host`), its golden check
    build_host_library, HOST                     TFLite Micro built for this machine (reference kernels)

Nothing here needs TensorFlow; building needs `arm-none-eabi-gcc`, running needs `qemu-arm`.
"""

from ._build import (APT_PACKAGES, CACHE_ENV, Library, Runner, build_library, is_built, build_plugin, build_runner, cache_root,
                     compile_flags, qemu_version, require_toolchain, semihosting_for_user_mode, sources)
from ._cores import CORES, KERNELS, Core, check_kernels, core
from ._host import HOST, HostLibrary, build_host_library
from ._image import FirmwareSources, Footprint, Golden, firmware_sources, link_footprint, resolver_methods, run_example
from ._sources import MIRROR_ENV, SOURCES, SOURCES_ENV, TFLM_COMMIT, Source, fetch_sources, tree_digest

__all__ = ["APT_PACKAGES", "CACHE_ENV", "Library", "Runner", "build_library", "is_built", "build_plugin", "build_runner", "cache_root",
           "compile_flags", "qemu_version", "require_toolchain", "semihosting_for_user_mode", "sources", "CORES", "KERNELS",
           "Core", "check_kernels", "core", "FirmwareSources", "Footprint", "Golden", "firmware_sources", "HOST", "HostLibrary",
           "build_host_library",
           "link_footprint", "resolver_methods", "run_example", "MIRROR_ENV", "SOURCES", "SOURCES_ENV", "TFLM_COMMIT", "Source",
           "fetch_sources", "tree_digest"]
