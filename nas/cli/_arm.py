"""`nas measure` (a .tflite run for real on a device's ruler) and `nas firmware build` (the Arm build
of TFLite Micro, made once per core and kernel set)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from ._common import add_parser, print_json


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:,.1f} KB"


def _show(path: str, device, m) -> None:
    c = m.count
    kernels = {"cmsisnn": "CMSIS-NN kernels", "reference": "reference kernels"}[c.kernels]
    print(f"{path} on {device.name} ({device.core}, {kernels}, TFLite Micro under QEMU): "
          f"{c.instructions:,} instructions per inference (counted exactly; instructions are not cycles)")
    if m.outputs_match_host is None:
        print(f"  outputs: {m.host_note}")
    else:
        same = "identical to" if m.outputs_match_host else "DIFFERENT from"
        diff = f" (largest difference {m.max_abs_diff:.3g})" if m.max_abs_diff else ""
        print(f"  outputs: {same} the host TFLite Micro interpreter's for the same input{diff}"
              + (f"; {m.host_note}" if m.host_note else ""))
    print(f"  arena {_kb(m.firmware_arena_bytes)} (the smallest tried it ran in; TFLite Micro reports {_kb(c.arena_bytes)}) and "
          f"stack {_kb(c.stack_bytes)} on the core; the firmware (exactly its operators, newlib-nano): flash "
          f"{_kb(m.firmware_flash_bytes)}, RAM {_kb(m.firmware_ram_bytes)} (static {_kb(m.firmware_static_ram_bytes)} + stack)")
    for note in c.extra.values():
        print(f"  note: {note}")
    ops = sorted(c.operators, key=lambda o: -o.instructions)
    total = sum(o.instructions for o in c.operators if o.depth == 0) or 1
    print(f"  operators ({len(ops)}; the largest first, with a profiler's ~20 instructions each; the share is of the "
          "main graph's, and an operator that runs a subgraph includes it):")
    for o in ops[:12]:
        print(f"    #{o.index:<4} {'  ' * o.depth}{o.name:<24} {o.instructions:>14,}  {100 * o.instructions / total:5.1f}%")
    if len(ops) > 12:
        print(f"    ... {len(ops) - 12} more (--json lists every one)")


def cmd_measure(args: argparse.Namespace) -> int:
    from ..latency import load_device

    device = load_device(args.device)
    if device.measure != "qemu":
        raise ConfigError(f"nas measure runs a model on the Arm build under QEMU; {device.name} is not such a device "
                          "(the cortex-m*-qemu-* ones are: `nas devices`); price it with `nas predict`")
    results = []
    for item in args.models:
        path = Path(item)
        if not path.is_file():
            raise ConfigError(f"{item}: no such file")
    from ..measure import arm_measure

    show = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
    for item in args.models:
        results.append((item, arm_measure(Path(item).read_bytes(), device.arm_core, device.kernels, progress=show)))
    if args.json:
        print_json([{"path": item, "device": device.name, **m.to_dict()} for item, m in results])
        return 1 if any(m.count.instructions is None for _, m in results) else 0
    failed = 0
    for item, m in results:
        if m.count.instructions is None:
            failed += 1
            print(f"{item} on {device.name}: does not run: {m.count.reason}")
        else:
            _show(item, device, m)
    return 1 if failed else 0


def cmd_firmware_build(args: argparse.Namespace) -> int:
    from ..firmware import CORES, KERNELS, build_plugin, build_runner

    cores = list(CORES) if args.all or not args.core else args.core
    kernels = list(KERNELS) if args.all or not args.kernels else args.kernels
    for name in cores:
        for kernel_set in kernels:
            runner = build_runner(name, kernel_set, progress=lambda text: print(text, file=sys.stderr, flush=True))
            print(f"{name} {kernel_set}: {runner.library.path}")
    print(f"counter: {build_plugin()}")
    return 0


def cmd_firmware_run(args: argparse.Namespace) -> int:
    """Build an exported firmware folder's example for its core and run it under QEMU: the golden check."""
    from ..firmware import HOST, run_example

    folder = Path(args.folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder: give the firmware/ folder `nas export` wrote")
    if args.core == HOST and args.kernels not in (None, "reference"):
        raise ConfigError(f"--core {HOST} builds TFLite Micro's reference kernels only (CMSIS-NN's are Arm code): "
                          "leave --kernels out")
    if args.core != HOST and args.kernels is None:
        raise ConfigError(f"--core {args.core} needs --kernels (the card's build_and_run line names them)")
    status, printed = run_example(folder, args.core, args.kernels or "reference",
                                  progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(printed.rstrip())
    if status != 0:
        print(f"nas: the example exited with status {status}", file=sys.stderr)
    return 0 if status == 0 else 1


def register(sub) -> None:
    """Add `measure` and `firmware` to the `nas` parser's subcommands."""
    from ..firmware import CORES, HOST, KERNELS

    p = add_parser(sub, "measure", help="run .tflite files on a device's Arm build under QEMU: instructions per "
                   "inference and per operator, outputs against the host's, firmware flash and RAM")
    p.add_argument("models", nargs="+", help=".tflite files")
    p.add_argument("--device", required=True, help="a cortex-m*-qemu-* device (`nas devices`)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_measure)

    firmware = add_parser(sub, "firmware", help="the Arm build of TFLite Micro (sources fetched and built once, per core)")
    actions = firmware.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = add_parser(actions, "build", help="fetch the pinned sources and build TFLite Micro, the runner and the counter")
    p.add_argument("--core", action="append", choices=list(CORES), help="a core (repeatable; default: all)")
    p.add_argument("--kernels", action="append", choices=list(KERNELS), help="a kernel set (repeatable; default: both)")
    p.add_argument("--all", action="store_true", help="every core and kernel set (minutes each, on 2 cores)")
    p.set_defaults(func=cmd_firmware_build)
    p = add_parser(actions, "run", help="build an exported firmware/ folder for a core and run it under QEMU, or for "
                   f"this machine (--core {HOST}): its raw golden image preprocessed, one inference, the output checked "
                   "against the host TFLite Micro's")
    p.add_argument("folder", help="the firmware/ folder `nas export` wrote")
    p.add_argument("--core", required=True, choices=[*CORES, HOST], help=f"a Cortex-M core, or {HOST} (this machine)")
    p.add_argument("--kernels", choices=list(KERNELS), help="the kernel set, for a Cortex-M core")
    p.set_defaults(func=cmd_firmware_run)
