"""`nas devices`, `nas calibrate`, `nas predict`: device profiles and their latency models."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ._common import add_parser, check_writable, nonnegative_int, number, positive_int, print_json, read_text, seed


def _device_row(device) -> dict:
    from dataclasses import asdict

    from ..latency import calibration_score, candidate_error, energy_errors

    row = {**asdict(device), "score": calibration_score(device)}
    artifact = device.artifact if device.latency_model else None
    entry = (artifact or {}).get("profiles", {}).get(device.name) if artifact and artifact.get("kind") == "board-catalog" else None
    if entry is not None:
        unseen = candidate_error(artifact, entry)  # the catalog's new-model error with its base kernel model's
        row.update(loo_mean_pct=round(entry["loo_mean_pct"], 1), loo_max_pct=round(entry["loo_max_pct"], 1),
                   refs=len(entry["refs"]), unseen_mean_pct=round(unseen[0], 1),
                   unseen_max_pct=round(unseen[1], 1), lobo_mean_pct=(round(entry["lobo"]["mean_abs_error_pct"], 1)
                                                           if "mean_abs_error_pct" in entry["lobo"] else None),
                   lobo_note=entry["lobo"].get("note", ""), power_mw=entry["power_mw"] and round(entry["power_mw"], 2),
                   energy_loo_mean_pct=entry["energy_loo_mean_pct"] and round(entry["energy_loo_mean_pct"], 1),
                   energy_loo_max_pct=entry["energy_loo_max_pct"] and round(entry["energy_loo_max_pct"], 1),
                   power_loo_mean_pct=entry.get("power_loo_mean_pct") and round(entry["power_loo_mean_pct"], 1),
                   power_loo_max_pct=entry.get("power_loo_max_pct") and round(entry["power_loo_max_pct"], 1))
        if entry["power_mw"]:  # what a search candidate's energy carries, as its latency carries unseen_*
            mean, largest = energy_errors(entry, *unseen)
            row.update(energy_unseen_mean_pct=mean and round(mean, 1), energy_unseen_max_pct=largest and round(largest, 1))
    return row


def _table(header: tuple, rows: list[tuple]) -> None:
    table = [header] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _fmt(value, unit=""):
    return "-" if value in (None, "") else f"{value:g}{unit}" if isinstance(value, (int, float)) else str(value)


def cmd_devices(args: argparse.Namespace) -> int:
    from ..latency import device_names, load_device

    if args.fits:
        return _devices_fit(args)
    rows = [_device_row(load_device(name)) for name in device_names()]
    if args.json:
        print_json(rows)
        return 0
    boards = [r for r in rows if "loo_mean_pct" in r]
    others = [r for r in rows if "loo_mean_pct" not in r]
    if boards:
        print(f"microcontroller boards ({len(boards)}; latency from the board catalog, errors leave-one-model-out "
              "and leave-one-board-out):")
        _table(("name", "core", "clock", "SRAM", "flash", "runtime", "refs", "LOO mean", "LOO max", "new model mean/max",
                "LOBO", "energy LOO", "new model energy mean/max"),
               [(r["name"], r["core"], _fmt(r["clock_mhz"], " MHz"), _fmt(r["sram_kb"], " KB"), _fmt(r["flash_kb"], " KB"),
                 r["board_runtime"], str(r["refs"]), _fmt(r["loo_mean_pct"], "%"), _fmt(r["loo_max_pct"], "%"),
                 f"{r['unseen_mean_pct']:g}% / {r['unseen_max_pct']:g}%", _fmt(r["lobo_mean_pct"], "%"),
                 _fmt(r["energy_loo_mean_pct"], "%"),
                 f"{r['energy_unseen_mean_pct']:g}% / {r['energy_unseen_max_pct']:g}%" if r.get("energy_unseen_mean_pct")
                 else "-") for r in boards])
        print()
    _table(("name", "runtime", "unit", "modes", "latency from", "calibration score"),
           [(r["name"], r["runtime"], r["unit"], ",".join(r["quantization"]), r["latency_source"], r["score"]) for r in others])
    return 0


def _devices_fit(args: argparse.Namespace) -> int:
    """`nas devices --fits model.tflite`: the boards whose flash and SRAM hold the model, with its latency there."""
    from ..latency import APP_RESERVE, load_device, runs_on
    from ..measure import tflm_arena

    path = Path(args.fits)
    if not path.is_file():
        raise ConfigError(f"{args.fits}: no such file")
    tflite = path.read_bytes()
    measured = tflm_arena(tflite)
    arena = measured.arena_bytes if measured.compatible else load_device("host-tflm-icount").predict(tflite).arena_bytes
    rows = runs_on(tflite, arena)
    if args.json:
        print_json({"model": str(path), "size_bytes": len(tflite), "arena_bytes": arena,
                    "arena_source": "measured (TFLite Micro)" if measured.compatible else "predicted", "boards": rows})
        return 0
    fits = [r for r in rows if r["fits"]]
    print(f"{path}: {len(tflite) / 1024:.1f} KB, TFLite Micro arena {arena / 1024 if arena else float('nan'):.1f} KB "
          f"({'measured' if measured.compatible else 'predicted'}); fits {len(fits)} of {len(rows)} boards "
          f"(after {APP_RESERVE:.0%} of flash and SRAM left to the application)")
    print("error: the latency model's mean and largest error on that board for a model no board has run; "
          "energy: the board's mean power x latency, its error that latency error compounded with the power model's")
    _table(("board", "fits", "latency ms", "error mean/max", "energy uJ", "energy error mean/max", "why not"),
           [(r["device"], {True: "yes", False: "no", None: "?"}[r["fits"]], _fmt(r["latency_ms"]),
             f"{r['latency_error_pct']:g}% / {r['latency_error_max_pct']:g}%" if r["latency_error_pct"] is not None else "-",
             _fmt(r["energy_uj"]), f"{r['energy_error_pct']:g}% / {r['energy_error_max_pct']:g}%"
             if r["energy_error_pct"] is not None else "-", r["why"]) for r in rows])
    return 0


def _check_repeatability(args, device) -> int:
    from ..calibration import make_samples
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


def _calibrate_boards(args: argparse.Namespace) -> int:
    """Fit the board catalog and write its artifact and one device profile per board."""
    import yaml

    from ..calibration import calibrate_boards, write_artifact
    from ..catalog import catalog_dirs
    from ..latency import CATALOG_ARTIFACT, artifact_path, load_artifact
    from ..files import atomic_write_text

    out = Path(args.out) if args.out else artifact_path(CATALOG_ARTIFACT)
    devices_dir = catalog_dirs("devices")[0]
    check_writable(out.parent)
    check_writable(devices_dir)
    artifact, profiles = calibrate_boards(seed=args.seed)
    artifact["provenance"]["command"] = f"nas calibrate --boards --seed {args.seed}"
    if not args.out:  # profiles of boards the new catalog no longer holds go with the old one
        old = load_artifact(CATALOG_ARTIFACT) or {"profiles": {}}
        for name in set(old["profiles"]) - {p["name"] for p in profiles}:
            (devices_dir / f"{name}.yaml").unlink(missing_ok=True)
    write_artifact(out, artifact)
    header = f"# Generated by `{artifact['provenance']['command']}` from latency_models/{CATALOG_ARTIFACT}.json; do not edit.\n"
    for profile in profiles if not args.out else ():  # the profiles describe the shipped catalog, not a copy elsewhere
        atomic_write_text(devices_dir / f"{profile['name']}.yaml", header + yaml.safe_dump(profile, sort_keys=False, width=120))
    v = artifact["validation"]
    if args.json:
        print_json({"artifact": str(out), "devices": [p["name"] for p in profiles], "validation": v})
        return 0
    print(f"wrote {out}" + ("" if args.out else f" and {len(profiles)} device profiles in {devices_dir}"))
    print(f"  leave-one-model-out: catalog mean {v['loo_mean_pct']:.1f}%, largest {v['loo_max_pct']:.0f}%; "
          f"{len(v['profiles_over_30pct'])} profile(s) over 30%")
    if v["lobo_mean_pct"] is not None:
        print(f"  leave-one-board-out: mean {v['lobo_mean_pct']:.1f}% over {v['lobo_boards']} profiles")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..calibration import calibrate_host, write_artifact
    from ..latency import artifact_path, calibration_score, load_device

    if args.boards:
        return _calibrate_boards(args)
    if not args.device:
        raise ConfigError("nas calibrate needs --device NAME, or --boards for the microcontroller catalog")
    device = load_device(args.device)
    if device.measure == "published":
        return _calibrate_boards(args)
    if args.check:
        return _check_repeatability(args, device)
    if not device.measure:
        raise ConfigError(f"device {device.name} is not calibrated by measurement ({device.calibration})")
    out = Path(args.out) if args.out else artifact_path(device.latency_model or device.name)
    check_writable(out.parent)
    if device.measure == "icount":
        from ..measure import require_valgrind

        require_valgrind()
    if device.measure == "qemu":
        from ..firmware import require_toolchain

        require_toolchain()
    show = None if args.json or args.no_progress else (lambda i, n: print(f"\rbuilt {i}/{n} models", end="", file=sys.stderr, flush=True))
    artifact = calibrate_host(device, args.samples, seed=args.seed, progress=show, op_samples=args.op_samples)
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
            spec = ArchSpec.from_json(read_text(item))
            if args.quantization:
                spec = spec.replace(quantization=args.quantization)
            prediction = device.predict(spec, args.channels, args.classes)
            if not prediction.runs and not device.runs(spec.quantization):
                prediction = replace(prediction, reason=f"{prediction.reason}; price it as deployed there with --quantization "
                                                        f"{' or '.join(device.quantization)}")
        else:
            if args.quantization:
                raise ConfigError(f"{item}: a .tflite's quantization is in the file: --quantization applies to architecture "
                                  ".json files only")
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
            if p.error_pct is not None:
                what = "for a model no board has run" if p.unit == "ms" else "on held-out calibration models"
                value += f" (error {what}: mean {p.error_pct:.0f}%, max {p.error_max_pct:.0f}%"
                value += (", widened for estimated operators)" if p.estimated else ")")
            if p.estimated:
                value += "; estimated: " + ", ".join(f"{op} as {family} ({share:.1f}% of it)" for op, family, share in p.estimated)
            if p.energy_uj is not None:
                value += (f", {p.energy_uj:,.1f} uJ (error: mean {p.energy_error_pct:.0f}%, max {p.energy_error_max_pct:.0f}%: "
                          "the latency error compounded with the board's power model's)"
                          if p.energy_error_pct is not None else f", {p.energy_uj:,.1f} uJ (error not known: refit the catalog)")
        arena = f", arena ≈ {p.arena_bytes / 1024:.1f} KB" if p.arena_bytes else ""
        print(f"{item}  [{p.mode}]  {value}{arena}")
    return 0


def register(sub) -> None:
    """Add `devices`, `calibrate` and `predict` to the `nas` parser's subcommands."""
    from ..spec import QUANT_MODES

    p = add_parser(sub, "devices", help="list the device profiles: runtime, modes it runs, where latency comes from")
    p.add_argument("--fits", metavar="MODEL", help="a .tflite: the boards whose flash and SRAM hold it, with its latency there")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_devices)

    p = add_parser(sub, "calibrate", help="measure sampled models on a device's ruler, fit its latency model, validate it")
    p.add_argument("--device", help="a host device to calibrate (a microcontroller refits the whole board catalog)")
    p.add_argument("--boards", action="store_true", help="fit the microcontroller board catalog on the MLPerf Tiny results "
                   "and write its device profiles")
    p.add_argument("--samples", type=number(int, least=8), default=300,
                   help="models to sample and measure (host devices; 8 or more: a held-out split needs some)")
    p.add_argument("--op-samples", type=nonnegative_int, default=2, help="and this many generated models around each operator "
                   "(QUANTIZE, PAD, CONCATENATION, ...), in every mode the device runs (host devices)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--check", action="store_true", help="wall-clock devices: measure and print this machine's repeatability floor")
    p.add_argument("--out", help="artifact path (default: latency_models/<device>.json)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = add_parser(sub, "predict", help="predict latency (or instructions) of .tflite files or architecture JSON on a device")
    p.add_argument("models", nargs="+", help=".tflite files, or architecture .json files (from `nas space sample`)")
    p.add_argument("--device", required=True)
    p.add_argument("--channels", type=positive_int, default=1, help="architecture JSON: input channels (default 1)")
    p.add_argument("--classes", type=number(int, least=2), default=10,
                   help="architecture JSON: number of classes (2 or more; default 10)")
    p.add_argument("--quantization", choices=QUANT_MODES, help="architecture JSON: price it in this mode instead of its own")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
