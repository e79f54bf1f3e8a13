"""A model run on the Arm build of TFLite Micro under QEMU, its instructions counted exactly.

The runner (`nas.firmware`, every operator registered) reads the model and an input through
semihosting and invokes it; the emulator's plugin counts every instruction executed and notes the
running count at the runner's marks. One run gives:
    instructions    the whole warm invoke, by an interpreter with no profiler (as firmware runs it)
    operators       each operator's instructions, by a second interpreter with a profiler
    arena_bytes     the arena TFLite Micro reported using on the core (its pointers are 4 bytes, the
                    host's 8); `arm_measure` proves the smallest one it runs in, run by run
    stack_bytes     the stack allocation and the invokes used (a painted stack's high-water mark)
    outputs         the output tensors' bytes, compared with the host TFLite Micro interpreter's
Counts repeat exactly: the same binary, model and input execute the same instructions.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


__all__ = ["OperatorCount", "ArmCount", "ArmMeasurement", "arm_count", "arm_measure", "golden_input", "HostTflm"]


@dataclass(frozen=True)
class OperatorCount:
    index: int  # the order the interpreter ran it in (an operator in a loop's body runs once a pass)
    name: str
    instructions: int  # from its start to its end: a subgraph an operator runs (IF, WHILE) is inside it
    depth: int = 0  # 0 for the main graph's operators, 1 for those of a subgraph they run, ...


@dataclass(frozen=True)
class ArmCount:
    core: str
    kernels: str
    instructions: int | None  # None: the model did not run (reason says why)
    reason: str = ""
    operators: tuple[OperatorCount, ...] = ()
    arena_bytes: int | None = None  # what the interpreter reported using on the core (it misses the allocator's peak)
    arena_limit_bytes: int | None = None  # the arena it ran in, where one was given
    stack_bytes: int | None = None  # from constructing the interpreter to the end of the counted invoke
    outputs: bytes = b""
    emulation_s: float = 0.0
    total_executed: int | None = None  # the whole emulated program: start-up, reading files, both interpreters
    extra: dict = field(default_factory=dict)


#: the host interpreter's arena while it describes or runs a model for comparison (allocated, not used)
_HOST_ARENA = 64 << 20


def golden_input(shape: list[int] | tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """A deterministic input tensor: uniform over an integer type's range, or over [-1, 1] for floats."""
    rng = np.random.default_rng(seed)
    kind = np.dtype(dtype)
    if kind.kind in "iu":
        info = np.iinfo(kind)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(kind)
    return rng.uniform(-1.0, 1.0, size=shape).astype(kind)


def _parse_result(text: str) -> dict:
    out: dict = {"ops": []}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "op":
            depth, _, name = value.partition(" ")
            out["ops"].append((int(depth), name))
        elif key in ("arena_used", "stack", "events", "stack_overflowed_paint"):
            out[key] = int(value)
        elif key == "error":
            out["error"] = value
        elif key == "ok":
            out["ok"] = True
    return out


def _parse_marks(text: str) -> tuple[int, list[tuple[str, int]]]:
    lines = text.split("\n")
    total = int(lines[0].split()[1])
    marks = [(kind, int(count)) for kind, count in (line.split() for line in lines[1:] if line)]
    return total, marks


def _operators(marks: list[tuple[str, int]], names: list[tuple[int, str]]) -> tuple[OperatorCount, ...] | None:
    """Pair the profiled invoke's begin/end marks (nested where a subgraph runs inside an operator)
    with the runner's (depth, name) of each; None where they do not pair."""
    begins: list[tuple[int, int]] = []
    counts: dict[int, int] = {}
    index = 0
    for kind, at in marks:
        if kind == "B":
            begins.append((index, at))
            index += 1
        elif begins:
            i, start = begins.pop()
            counts[i] = at - start
    if begins or len(counts) != len(names):
        return None
    return tuple(OperatorCount(i, name, counts[i], depth) for i, (depth, name) in enumerate(names))


def arm_count(model: bytes, core: str, kernels: str = "cmsisnn", x: np.ndarray | None = None, *,
              arena_limit_bytes: int | None = None, timeout_s: float = 600.0, progress=None) -> ArmCount:
    """Run `model` once on the Arm build for `core` and count it (see the module's docstring).
    `x` is the input tensor's value (None: zeros); the Arm build is made first
    if the cache does not hold it (minutes, once per core and kernel set)."""
    from ..firmware import build_plugin, build_runner, require_toolchain

    qemu = require_toolchain()["qemu-arm"]
    runner = build_runner(core, kernels, progress=progress)
    plugin = build_plugin()
    with tempfile.TemporaryDirectory(prefix="nas-arm-") as tmp:
        work = Path(tmp)
        (work / "model.tflite").write_bytes(model)
        if x is not None:
            (work / "input.bin").write_bytes(np.ascontiguousarray(x).tobytes())
        if arena_limit_bytes is not None:
            (work / "arena.txt").write_text(f"{arena_limit_bytes}\n")
        counts = work / "counts.txt"
        cmd = [qemu, "-cpu", "max", "-plugin",
               f"{plugin},begin={runner.begin_at:#x},end={runner.end_at:#x},out={counts}", str(runner.elf)]
        start = time.perf_counter()
        try:
            run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return ArmCount(core, kernels, None, f"the emulated run took more than {timeout_s:.0f} s and was stopped")
        seconds = time.perf_counter() - start
        result = _parse_result((work / "result.txt").read_text()) if (work / "result.txt").exists() else {}
        if not result.get("ok"):
            log = " ".join((run.stdout + run.stderr).split())[-300:]
            why = result.get("error") or f"the runner stopped (exit {run.returncode})"
            return ArmCount(core, kernels, None, f"{why}: {log}" if log else why, emulation_s=seconds)
        if not counts.exists():
            return ArmCount(core, kernels, None, "the instruction counter wrote nothing: is this qemu-arm built "
                                                 "with plugin support?", emulation_s=seconds)
        total, marks = _parse_marks(counts.read_text())
        if [kind for kind, _ in marks[:2]] != ["B", "E"]:
            return ArmCount(core, kernels, None, "the counter's marks do not pair (the runner and its marks disagree)",
                            emulation_s=seconds)
        operators = _operators(marks[2:], result["ops"])
        extra = {} if operators is not None else {"operators": "the profiled operators' marks did not pair"}
        if result.get("stack_overflowed_paint"):
            extra["stack"] = f"at least {result['stack']} bytes: deeper than the painted stack"
        return ArmCount(core, kernels, marks[1][1] - marks[0][1], operators=operators or (),
                        arena_bytes=result["arena_used"], arena_limit_bytes=arena_limit_bytes, stack_bytes=result["stack"],
                        outputs=(work / "output.bin").read_bytes(), emulation_s=seconds, total_executed=total, extra=extra)


class HostTflm:
    """The host TFLite Micro interpreter (reference kernels, x86) for one model: the first input's
    and output's shape and type, and its outputs for an input. `error` says why it could not load it."""

    def __init__(self, model: bytes):
        from ._tflm import TflmWorker

        self._worker = TflmWorker(model)
        reply = self._worker.request("details", _HOST_ARENA)
        self.input, self.output = reply.get("input"), reply.get("output")
        self.error = "" if reply["ok"] else self._reason(reply)

    @staticmethod
    def _reason(reply: dict) -> str:
        from ._tflm import _reason_from

        return _reason_from(reply)

    def outputs(self, x: np.ndarray) -> bytes | str:
        """The first output tensor's bytes for input `x`, or why there are none."""
        np.save(self._worker.path("x.npy"), x)
        reply = self._worker.request("run", _HOST_ARENA, self._worker.path("x.npy"), self._worker.path("y.npy"))
        if not reply["ok"]:
            return self._reason(reply)
        return np.load(self._worker.path("y.npy"), allow_pickle=False).astype(self.output["dtype"]).tobytes()

    def close(self) -> None:
        self._worker.close()


@dataclass(frozen=True)
class ArmMeasurement:
    """`nas measure` on an Arm device: the count, the host check and the linked firmware."""

    count: ArmCount
    outputs_match_host: bool | None = None  # None: not compared (why in host_note)
    host_note: str = ""
    max_abs_diff: float | None = None  # float outputs: the largest difference from the host's
    firmware_flash_bytes: int | None = None
    firmware_ram_bytes: int | None = None  # static RAM (arena included) + the invoke's stack
    firmware_static_ram_bytes: int | None = None
    firmware_sections: dict = field(default_factory=dict)
    firmware: object = None  # the FirmwareSources that linked (nas.firmware), None where it did not run
    firmware_arena_bytes: int | None = None  # the smallest arena tried (reported use + 16, 256, ...) it ran in

    def to_dict(self) -> dict:
        c = self.count
        out: dict = {"core": c.core, "kernels": c.kernels, "runs": c.instructions is not None}
        if c.instructions is None:
            out["reason"] = c.reason
            return out
        out.update(instructions=c.instructions, operators=[{"index": o.index, "name": o.name, "instructions": o.instructions,
                                                            "depth": o.depth} for o in c.operators],
                   arena_bytes=self.firmware_arena_bytes, arena_used_bytes=c.arena_bytes, stack_bytes=c.stack_bytes, firmware_flash_bytes=self.firmware_flash_bytes,
                   firmware_ram_bytes=self.firmware_ram_bytes, firmware_static_ram_bytes=self.firmware_static_ram_bytes,
                   firmware_sections=self.firmware_sections, outputs_match_host=self.outputs_match_host,
                   emulation_s=round(c.emulation_s, 3))
        if self.max_abs_diff is not None:
            out["max_abs_diff"] = self.max_abs_diff
        if self.host_note:
            out["host_note"] = self.host_note
        if c.extra:
            out["notes"] = c.extra
        return out


def _compare(host: HostTflm, x: np.ndarray, count: ArmCount) -> tuple[bool | None, str, float | None, bytes]:
    """Whether the core's first output equals the host's for `x`, a note, the largest float difference,
    and the host's output (the golden output an exported firmware checks itself against)."""
    got = host.outputs(x)
    if isinstance(got, str):
        return None, f"the host TFLite Micro interpreter did not run it: {got}", None, b""
    arm = count.outputs[:len(got)]
    note = "" if len(got) == len(count.outputs) else "the first output tensor compared (the host runner reads one)"
    diff = None
    if np.dtype(host.output["dtype"]).kind == "f" and len(arm) == len(got):
        dtype = np.dtype(host.output["dtype"])
        diff = float(np.max(np.abs(np.frombuffer(arm, dtype) - np.frombuffer(got, dtype)), initial=0.0))
    return arm == got, note, diff, got


def arm_measure(model: bytes, core: str, kernels: str = "cmsisnn", *, check_host: bool = True, x: np.ndarray | None = None,
                progress=None) -> ArmMeasurement:
    """Count `model` on the Arm build (`arm_count`), compare its outputs with the host TFLite Micro
    interpreter's for the same input (`x`, the input tensor's value; None: `golden_input`'s), and
    link its firmware (exactly its operators, the arena it used on the core) to measure flash and RAM."""
    from ..firmware import Golden, build_library, firmware_sources, link_footprint

    host = HostTflm(model)
    expected = b""
    try:
        if host.error:
            x = None
        elif x is None:
            x = golden_input(host.input["shape"], host.input["dtype"])
        count = arm_count(model, core, kernels, x, progress=progress)
        if count.instructions is None or not count.operators:  # no operators paired: no firmware to link
            return ArmMeasurement(count)
        if host.error:
            match, note, diff = None, f"zeros as input, not compared: the host TFLite Micro interpreter cannot load it ({host.error})", None
        elif check_host:
            match, note, diff, expected = _compare(host, x, count)
        else:
            match, note, diff = None, "not compared", None
        io = {"input": host.input, "output": host.output}
    finally:
        host.close()
    arena = _proven_arena(model, core, kernels, x, count.arena_bytes)
    if arena is None:
        why = "no arena up to 64 KB over its reported use ran it: no firmware linked"
        return ArmMeasurement(count, match, f"{note}; {why}" if note else why, diff)
    library = build_library(core, kernels)
    names = [o.name for o in count.operators]
    # the golden pair (the input, and the host interpreter's output for it) where the core's output equals it
    golden = Golden(x.tobytes(), expected, io) if match is True and x is not None else None
    sources = firmware_sources(model, sorted(set(names), key=names.index), arena, library.tree, golden)
    footprint = link_footprint(sources, core, kernels)
    return ArmMeasurement(count, match, note, diff, footprint.flash_bytes,
                          footprint.static_ram_bytes + (count.stack_bytes or 0), footprint.static_ram_bytes,
                          footprint.sections, sources, arena)


#: what is tried over the arena TFLite Micro reports using, smallest first (its figure misses the
#: allocator's temporary peak); each size is its own emulated run, as one too small may crash it
_ARENA_MARGINS = (16, 256, 1024, 4096, 16384, 65536)


def _proven_arena(model: bytes, core: str, kernels: str, x, used: int) -> int | None:
    """The smallest arena of `used` + `_ARENA_MARGINS` (16-byte rounded) the model allocates and runs in."""
    for margin in _ARENA_MARGINS:
        size = -(-(used + margin) // 16) * 16
        if arm_count(model, core, kernels, x, arena_limit_bytes=size, timeout_s=120).instructions is not None:
            return size
    return None
