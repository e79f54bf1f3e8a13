"""`nas devices`, `nas calibrate`, `nas predict`: device profiles and their latency models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from ._common import add_parser, check_writable, print_json, read_text


def cmd_devices(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..latency import calibration_score, device_names, load_device

    devices = [load_device(name) for name in device_names()]
    rows = [{**asdict(d), "score": calibration_score(d)} for d in devices]
    if args.json:
        print_json(rows)
        return 0

    def fmt(value, unit=""):
        return "-" if value in (None, "") else f"{value:g}{unit}" if isinstance(value, (int, float)) else str(value)

    header = ("name", "core", "clock", "SRAM", "flash", "runtime", "unit", "modes", "latency from", "calibration score")
    table = [header] + [(r["name"], fmt(r["core"]), fmt(r["clock_mhz"], " MHz"), fmt(r["sram_kb"], " KB"),
                         fmt(r["flash_kb"], " KB"), r["runtime"], r["unit"], ",".join(r["quantization"]),
                         r["latency_source"], r["score"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _check_repeatability(args, device) -> int:
    from ..latency import make_samples
    from ..measure import repeatability

    if device.measure != "wallclock":
        raise ConfigError(f"--check measures wall-clock repeatability; {device.name} is measured by {device.measure or 'nothing on this host'}")
    samples = [s for s in make_samples(args.samples, device.quantization, args.seed) if s.tflite]
    floor = repeatability([s.tflite for s in samples])
    if args.json:
        print_json(floor)
    else:
        print(f"repeatability floor of this machine ({floor['n']} models, two passes of the protocol): "
              f"{floor['within_10pct']:.0%} agree within 10%, {floor['within_5pct']:.0%} within 5%, "
              f"median difference {floor['median_abs_diff_pct']:.1f}%, 90th percentile {floor['p90_abs_diff_pct']:.1f}%")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..latency import artifact_path, calibrate_host, calibrate_mcu, calibration_score, load_device, write_artifact

    device = load_device(args.device)
    if args.check:
        return _check_repeatability(args, device)
    if not device.measure:
        raise ConfigError(f"device {device.name} is not calibrated by measurement ({device.calibration})")
    out = Path(args.out) if args.out else artifact_path(device.latency_model or device.name)
    check_writable(out.parent)
    if device.measure == "published":
        artifact = calibrate_mcu(device, seed=args.seed)
    else:
        if args.samples < 8:
            raise ConfigError("--samples must be at least 8 (a held-out split needs some)")
        if device.measure == "icount":
            from ..measure import require_valgrind

            require_valgrind()
        show = None if args.json or args.no_progress else (lambda i, n: print(f"\rbuilt {i}/{n} models", end="", file=sys.stderr, flush=True))
        artifact = calibrate_host(device, args.samples, seed=args.seed, progress=show)
        if show:
            print(file=sys.stderr)
    artifact["provenance"]["command"] = "nas " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["calibrate"] else "nas calibrate"
    write_artifact(out, artifact)
    summary = {"device": device.name, "artifact": str(out), "validation": artifact["validation"]}
    if artifact.get("arena"):
        summary["arena_validation"] = artifact["arena"]["validation"]
    if args.json:
        print_json(summary)
        return 0
    print(f"wrote {out}")
    print(f"{device.name}: {calibration_score(load_device(device.name)) if not args.out else ''}".rstrip(": "))
    _print_calibration(artifact)
    return 0


def _print_calibration(artifact: dict) -> None:
    for mode, v in artifact["validation"].items():
        if mode == "leave_one_out":
            continue
        if "within_10pct" in v:
            floor = v.get("macs_linear_floor", {})
            print(f"  {mode:<13} held-out n={v['n']:<3} within 10%: {v['within_10pct']:.0%}  Spearman {v['spearman']:.3f}"
                  f"  (MACs-linear floor: {floor.get('within_10pct', float('nan')):.0%}, {floor.get('spearman') or float('nan'):.3f})")
        else:
            print(f"  {mode:<13} {v.get('note', '')}")
    for ref in artifact.get("references", []):
        loo = f"leave-one-out {ref['loo_error_pct']:+.0f}%" if ref["loo_error_pct"] is not None else "no leave-one-out"
        print(f"  {ref['reference_model']:<28} published {ref['published_ms']:g} ms, fitted {ref['fitted_ms']:.1f} ms, {loo}")
    for mode, fitted in (artifact.get("arena") or {}).get("modes", {}).items():
        if fitted.get("validation"):
            a = fitted["validation"]
            print(f"  arena {mode:<7} held-out n={a['n']:<3} within 10%: {a['within_10pct']:.0%}, max error {a['max_error_pct']:.1f}%")


def cmd_predict(args: argparse.Namespace) -> int:
    from ..latency import load_device
    from ..spec import ArchSpec

    device = load_device(args.device)
    results = []
    for item in args.models:
        path = Path(item)
        if not path.is_file():
            raise ConfigError(f"{item}: no such file")
        if path.suffix == ".json":
            prediction = device.predict(ArchSpec.from_json(read_text(item)), args.channels, args.classes)
        else:
            prediction = device.predict(path)
        results.append((item, prediction))
    if args.json:
        print_json([{"path": item, **p.to_dict()} for item, p in results])
        return 0
    for item, p in results:
        if not p.runs:
            value = f"not predicted: {p.reason}"
        else:
            value = f"{p.value:,.3f} ms" if p.unit == "ms" else f"{p.value:,.0f} {p.unit}"
        arena = f", arena ≈ {p.arena_bytes / 1024:.1f} KB" if p.arena_bytes else ""
        print(f"{item}  [{p.mode}]  {value}{arena}")
    return 0


def register(sub) -> None:
    """Add `devices`, `calibrate` and `predict` to the `nas` parser's subcommands."""
    p = add_parser(sub, "devices", help="list the device profiles: runtime, modes it runs, where latency comes from")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_devices)

    p = add_parser(sub, "calibrate", help="measure sampled models on a device's ruler, fit its latency model, validate it")
    p.add_argument("--device", required=True)
    p.add_argument("--samples", type=int, default=300, help="models to sample and measure (host devices)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="wall-clock devices: measure and print this machine's repeatability floor")
    p.add_argument("--out", help="artifact path (default: latency_models/<device>.json)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = add_parser(sub, "predict", help="predict latency (or instructions) of .tflite files or architecture JSON on a device")
    p.add_argument("models", nargs="+", help=".tflite files, or architecture .json files (from `nas space sample`)")
    p.add_argument("--device", required=True)
    p.add_argument("--channels", type=int, default=1, help="architecture JSON: input channels (default 1)")
    p.add_argument("--classes", type=int, default=10, help="architecture JSON: number of classes (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
