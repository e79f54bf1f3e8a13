"""The Cortex-M cores the Arm build targets, and the kernel sets it builds for each.

A core is compiled as the boards that carry it are: with its FPU and hard-float calling convention
where it has one (the Cortex-M4F, M7 and M33 parts of the board catalog all do), with the DSP
extension where it has one; the Cortex-M0+ has neither, so CMSIS-NN takes its plain C path there.
Emulation runs the objects in QEMU's Linux user mode (`qemu-arm -cpu max`, a superset of the
Thumb-2, DSP and VFP instructions these cores execute); the count is of the instructions the
compiled code executes, which does not depend on which CPU model decodes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnknownNameError

__all__ = ["Core", "CORES", "KERNELS", "core", "check_kernels"]

#: kernel sets: CMSIS-NN's optimized kernels (what Arm boards ship) or TFLite Micro's reference kernels
KERNELS = ("cmsisnn", "reference")


@dataclass(frozen=True)
class Core:
    name: str  # the device-name prefix: cortex-m4 -> cortex-m4-qemu-cmsisnn
    mcpu: str  # GCC's -mcpu
    float_abi: str  # "hard" where the core has an FPU, else "soft"
    fpu: str  # GCC's -mfpu ("" for none)
    isa: str  # in words, for device descriptions

    @property
    def flags(self) -> tuple[str, ...]:
        """The code-generation flags every object of this core's build is compiled with."""
        fpu = (f"-mfpu={self.fpu}",) if self.fpu else ()
        return (f"-mcpu={self.mcpu}", "-mthumb", f"-mfloat-abi={self.float_abi}", *fpu, "-mlittle-endian")


CORES: dict[str, Core] = {c.name: c for c in (
    Core("cortex-m0p", "cortex-m0plus", "soft", "", "Armv6-M (Thumb, no DSP, no FPU)"),
    Core("cortex-m4", "cortex-m4", "hard", "fpv4-sp-d16", "Armv7E-M with DSP and single-precision FPU"),
    Core("cortex-m7", "cortex-m7", "hard", "fpv5-d16", "Armv7E-M with DSP and double-precision FPU"),
    Core("cortex-m33", "cortex-m33", "hard", "fpv5-sp-d16", "Armv8-M Mainline with DSP and single-precision FPU"),
)}


def core(name: str) -> Core:
    if name not in CORES:
        raise UnknownNameError("core", name, tuple(CORES))
    return CORES[name]


def check_kernels(kernels: str) -> str:
    if kernels not in KERNELS:
        raise UnknownNameError("kernel set", kernels, KERNELS)
    return kernels
