"""The `nas` command line: parses arguments and calls the public Python API, nothing more.

User mistakes (`NasError`) print one line `nas: error: ...` and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import ConfigError, NasError

EXIT_USAGE = 2


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


_JSON_OUT = None  # the real stdout while --json output is protected (see _protect_stdout)


def _print_json(data: Any) -> None:
    out = _JSON_OUT or sys.stdout
    json.dump(data, out, indent=2, sort_keys=True, default=str)
    out.write("\n")
    out.flush()


def _protect_stdout() -> None:
    """Keep --json output parseable: what libraries print to file descriptor 1 (Ray's worker
    notices, the TFLite converter's log lines) goes to stderr; the JSON keeps the real stdout."""
    global _JSON_OUT
    import os

    sys.stdout.flush()
    _JSON_OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)


# --- nas space ----------------------------------------------------------------------------------
def cmd_space_list(args: argparse.Namespace) -> int:
    from .space import load_space, space_names

    rows = []
    for name in space_names():
        space = load_space(name)
        rows.append({"name": name, "description": space.description, "combinations": space.size(),
                     "resolution": list(space.choices["resolution"]), "quantization": list(space.choices["quantization"])})
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['name']:<18} {row['combinations']:.2e} combinations  resolution {row['resolution']}  {row['description']}")
    return 0


def cmd_space_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from .space import load_space

    space = load_space(args.space)
    if args.count < 1:
        raise ConfigError(f"--count: expected a positive integer, got {args.count}")
    rng = np.random.default_rng(args.seed)
    samples = [{"space": space.name, "hash": spec.hash, "spec": spec.to_dict()} for spec in (space.sample(rng) for _ in range(args.count))]
    _print_json(samples[0] if args.count == 1 else samples)
    return 0


# --- nas datasets -------------------------------------------------------------------------------
def cmd_datasets(args: argparse.Namespace) -> int:
    from .data import dataset_names, load_dataset

    rows = []
    for name in dataset_names():
        try:
            rows.append({"name": name, "available": True, **load_dataset(name, args.data_dir).summary()})
        except NasError as exc:
            rows.append({"name": name, "available": False, "reason": str(exc)})
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            if row["available"]:
                print(f"{row['name']:<14} {row['train']:>6} train {row['val']:>6} val {row['test']:>6} test  "
                      f"{row['image_size']}px x{row['channels']}  {len(row['classes'])} classes  from {row['source']}")
            else:
                print(f"{row['name']:<14} missing: {row['reason']}")
    return 0


# --- nas devices / calibrate / predict ----------------------------------------------------------
def _calibration_score(device) -> str:
    artifact = device.artifact
    if device.latency_model and artifact is None:
        return "not calibrated yet"
    if artifact is None:
        return "measured per candidate"
    validation = artifact.get("validation", {})
    if artifact.get("kind") == "scaled-instructions":
        loo = validation.get("leave_one_out", {})
        if not loo.get("n"):
            return f"{len(artifact.get('references', []))} published timing(s), no leave-one-out"
        return f"leave-one-out mean {loo['mean_abs_error_pct']:.0f}%, max {loo['max_abs_error_pct']:.0f}% ({loo['n']} refs)"
    overall = validation.get("all", {})
    if not overall:
        return "calibrated, no held-out score"
    return f"held-out {overall['within_10pct']:.0%} within 10%, Spearman {overall['spearman']:.3f} (n={overall['n']})"


def cmd_devices(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .devices import device_names, load_device

    devices = [load_device(name) for name in device_names()]
    rows = [{**asdict(d), "score": _calibration_score(d)} for d in devices]
    if args.json:
        _print_json(rows)
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate_host, calibrate_mcu, make_samples, write_artifact
    from .devices import artifact_path, load_device

    device = load_device(args.device)
    if args.check:
        if device.measure != "wallclock":
            raise ConfigError(f"--check measures wall-clock repeatability; {device.name} is measured by {device.measure or 'nothing on this host'}")
        from .timing import repeatability

        samples = [s for s in make_samples(args.samples, device.quantization, args.seed) if s.tflite]
        floor = repeatability([s.tflite for s in samples])
        if args.json:
            _print_json(floor)
        else:
            print(f"repeatability floor of this machine ({floor['n']} models, two passes of the protocol): "
                  f"{floor['within_10pct']:.0%} agree within 10%, {floor['within_5pct']:.0%} within 5%, "
                  f"median difference {floor['median_abs_diff_pct']:.1f}%, 90th percentile {floor['p90_abs_diff_pct']:.1f}%")
        return 0
    if not device.measure:
        raise ConfigError(f"device {device.name} is not calibrated by measurement ({device.calibration})")
    out = Path(args.out) if args.out else artifact_path(device.latency_model or device.name)
    _check_writable(out.parent)
    if device.measure == "published":
        artifact = calibrate_mcu(device, seed=args.seed)
    else:
        if args.samples < 8:
            raise ConfigError("--samples must be at least 8 (a held-out split needs some)")
        if device.measure == "icount":
            from .icount import require_valgrind

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
        _print_json(summary)
    else:
        print(f"wrote {out}")
        print(f"{device.name}: {_calibration_score(load_device(device.name)) if not args.out else ''}".rstrip(": "))
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
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .devices import load_device
    from .spec import ArchSpec

    device = load_device(args.device)
    results = []
    for item in args.models:
        path = Path(item)
        if not path.is_file():
            raise ConfigError(f"{item}: no such file")
        if path.suffix == ".json":
            result = device.predict(ArchSpec.from_json(_read_text(item)), args.channels, args.classes)
        else:
            result = device.predict(path)
        results.append({"path": item, **result})
    if args.json:
        _print_json(results)
        return 0
    unit = "latency_ms" if device.unit == "ms" else "instructions"
    for r in results:
        value = f"{r[unit]:,.3f} ms" if unit == "latency_ms" and r["runs"] else f"{r[unit]:,.0f} instructions" if r["runs"] else f"not predicted: {r['reason']}"
        arena = f", arena ≈ {r['arena_bytes'] / 1024:.1f} KB" if r.get("arena_bytes") else ""
        print(f"{r['path']}  [{r['mode']}]  {value}{arena}")
    return 0


# --- nas evaluate -------------------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    from .spec import ArchSpec
    from .train import TrainConfig

    spec = ArchSpec.from_json(_read_text(args.arch))
    changes = {k: v for k, v in (("quantization", args.quant), ("sparsity", args.sparsity), ("resolution", args.resolution)) if v is not None}
    if changes:
        spec = spec.replace(**changes)
    if args.space:
        from .space import load_space

        load_space(args.space).validate(spec)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_train_samples=args.max_train_samples, seed=args.seed)
    if args.save_tflite:
        _check_writable(Path(args.save_tflite).parent)

    from .data import load_dataset
    from .pipeline import evaluate_candidate

    dataset = load_dataset(args.dataset, args.data_dir, seed=args.seed)
    result = evaluate_candidate(spec, dataset, cfg, split=args.split)
    if args.save_tflite and result.tflite is not None:
        from ._io import atomic_write_bytes

        atomic_write_bytes(Path(args.save_tflite), result.tflite)
    data = result.to_dict()
    if args.json:
        _print_json(data)
    else:
        _print_result(data)
    return 0 if result.status == "ok" else 1


def _print_result(d: dict) -> None:
    print(f"candidate {d['spec_hash']} on {d['dataset']} ({d['quantization']}, sparsity {d['sparsity']}): {d['status']}")
    if d["status"] != "ok":
        print(f"  failed in {d['failed_stage']}: {d['reason']}")
        return
    print(f"  accuracy ({d['split']})   {d['accuracy']:.4f} converted, {d['float_accuracy']:.4f} float")
    print(f"  size            {d['size_bytes']} bytes ({d['params']} parameters, {d['macs']} MACs)")
    print(f"  peak RAM        {d['peak_ram_bytes']} bytes ({d['peak_ram_source']})")
    print(f"  host latency    {d['host_latency_ms']:.3f} ms (LiteRT, 1 thread, median)")
    tflm = "yes" if d["tflm_compatible"] else f"no: {d['tflm_reason']}"
    print(f"  TFLite Micro    {tflm}")


def _check_writable(folder: Path) -> None:
    folder = folder if str(folder) else Path(".")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    import os

    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ConfigError(f"output folder {folder} cannot be written")


# --- nas baselines / compare ----------------------------------------------------------------------
def cmd_baselines(args: argparse.Namespace) -> int:
    from .baselines import COLUMNS, MODELS, run_baselines, write_baselines

    # names are checked by run_baselines before anything is loaded or written
    models = list(MODELS) if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    columns = list(COLUMNS) if args.modes == "all" else [c.strip() for c in args.modes.split(",") if c.strip()]
    out = Path(args.out)
    _check_writable(out)
    show = (lambda message: None) if args.json else (lambda message: print(message, file=sys.stderr, flush=True))
    rows = run_baselines(args.dataset, models, columns, out, data_dir=args.data_dir, epochs=args.epochs,
                         batch_size=args.batch_size, max_train_samples=args.max_train_samples,
                         input_scale=args.input_scale, seed=args.seed, progress=show)
    write_baselines(rows, columns, out)
    if args.json:
        _print_json([{"dataset": r.dataset, "input": r.input, "model": r.model, "values": r.values, "notes": r.notes} for r in rows])
    else:
        print((out / "report.md").read_text())
        print(f"wrote {out / 'baselines.csv'} and {out / 'report.md'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare

    result = compare(Path(args.run), Path(args.baselines), Path(args.out) if args.out else None)
    if args.json:
        _print_json(result)
        return 0
    print(Path(result["table"]).read_text())
    print(f"wrote {result['table']}" + (f" and {result['figure']}" if result["figure"] else " (no figure: matplotlib missing)"))
    return 0


# --- nas search / pareto / export -----------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    from .search import run_search
    from .study import load_study

    strategy = args.strategy or args.sampler
    if strategy == "optuna":
        strategy = "tpe"  # the default Optuna sampler
    config = load_study(args.study, trials=args.trials, seed=args.seed, sampler=strategy, device=args.device,
                        data_dir=args.data_dir, max_size_kb=args.max_size_kb, max_ram_kb=args.max_ram_kb,
                        max_latency_ms=args.max_latency_ms)
    out = Path(args.out) if args.out else Path("runs") / config.name
    summary = run_search(config, out, storage=args.storage, progress=not args.no_progress, ray_address=args.ray_address,
                         workers=args.workers, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial)
    if args.json:
        _print_json({"out": str(summary.out_dir), "trained": summary.trained, "failed": summary.failed,
                     "screened": summary.screened, "final": summary.final, "elapsed_s": round(summary.elapsed_s, 1)})
    else:
        print(f"{summary.trained} trained, {summary.failed} failed, {summary.screened} rejected before training, "
              f"{summary.final} retrained; {summary.elapsed_s:.0f} s. Outputs in {summary.out_dir}/ "
              "(pareto.csv, trials.csv, report.md)")
        _print_pareto(Path(summary.out_dir))
    return 0


def _pareto_table(out: Path):
    import pandas as pd

    path = out / "pareto.csv"
    if not path.is_file():
        raise ConfigError(f"{out} holds no pareto.csv; run `nas search ... --out {out}` (again, to resume) first")
    return pd.read_csv(path)


def _print_pareto(out: Path) -> None:
    table = _pareto_table(out)
    if table.empty:
        print("No retrained model meets every budget.")
        return
    view = table.assign(**{
        "accuracy %": (100 * table["accuracy"]).round(2),
        "size KB": (table["size_bytes"] / 1024).round(1),
        "RAM KB": (table["peak_ram_bytes"] / 1024).round(1),
        "latency ms": table["latency_ms"].round(3),
    })[["trial", "accuracy %", "size KB", "RAM KB", "latency ms", "quantization", "sparsity", "peak_ram_source"]]
    print(view.to_string(index=False))


def cmd_pareto(args: argparse.Namespace) -> int:
    out = Path(args.run)
    if args.json:
        table = _pareto_table(out)
        _print_json(json.loads(table.to_json(orient="records")))
    elif args.csv:
        sys.stdout.write(_pareto_table(out).to_csv(index=False))
    else:
        _print_pareto(out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model

    if args.best == (args.trial is not None):
        raise ConfigError("say which model to export: --best or --trial N (one of them)")
    card = export_model(Path(args.run), Path(args.out), trial=args.trial, name=args.name, data_dir=args.data_dir)
    if args.json:
        _print_json(card)
    else:
        m = card["metrics"]
        agreement = f"{m['tflm_agreement']:.2%}" if m["tflm_agreement"] is not None else "n/a"
        print(f"exported trial {card['trial']} to {args.out}/: model.tflite ({m['size_bytes']} bytes), model_data.h/.cc, "
              f"model_card.json/.md; test accuracy {m['test_accuracy']:.2%}, TFLite Micro agreement {agreement}, "
              f"arena {m['tflm_arena_bytes']} bytes")
    return 0


# --- the parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .spec import QUANT_MODES

    parser = argparse.ArgumentParser(prog="nas", description="Hardware-aware neural architecture search for TinyML.")
    parser.add_argument("--version", action="version", version=f"nas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    space = sub.add_parser("space", help="inspect search spaces and sample architectures")
    space_sub = space.add_subparsers(dest="space_command", metavar="SUBCOMMAND")
    p = space_sub.add_parser("list", help="list the search spaces")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_space_list)
    p = space_sub.add_parser("sample", help="print a seeded random architecture as JSON")
    p.add_argument("--space", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--count", type=int, default=1)
    p.set_defaults(func=cmd_space_sample)

    p = sub.add_parser("datasets", help="list the datasets and whether their files are in place")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("devices", help="list the device profiles: runtime, modes it runs, where latency comes from")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("calibrate", help="measure sampled models on a device's ruler, fit its latency model, validate it")
    p.add_argument("--device", required=True)
    p.add_argument("--samples", type=int, default=300, help="models to sample and measure (host devices)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="wall-clock devices: measure and print this machine's repeatability floor")
    p.add_argument("--out", help="artifact path (default: latency_models/<device>.json)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("predict", help="predict latency (or instructions) of .tflite files or architecture JSON on a device")
    p.add_argument("models", nargs="+", help=".tflite files, or architecture .json files (from `nas space sample`)")
    p.add_argument("--device", required=True)
    p.add_argument("--channels", type=int, default=1, help="architecture JSON: input channels (default 1)")
    p.add_argument("--classes", type=int, default=10, help="architecture JSON: number of classes (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="train, convert and measure one architecture")
    p.add_argument("--dataset", required=True)
    p.add_argument("--arch", required=True, help="architecture JSON file (from `nas space sample`), or - for stdin")
    p.add_argument("--quant", help=f"override the spec's quantization: {', '.join(QUANT_MODES)}")
    p.add_argument("--sparsity", type=float, help="override the spec's pruning sparsity")
    p.add_argument("--resolution", type=int, help="override the spec's input resolution")
    p.add_argument("--space", help="also check the spec against this search space")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--split", choices=["val", "test"], default="val", help="split the accuracies are measured on")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-tflite", help="also write the converted model here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("search", help="run (or resume) a multi-objective search from a study file")
    p.add_argument("study", help="a study YAML file, or the name of one in studies/")
    p.add_argument("--out", help="output folder (default runs/<study name>); running again resumes")
    p.add_argument("--trials", type=int, help="total finished trained trials the study should hold")
    p.add_argument("--max-size-kb", type=float)
    p.add_argument("--max-ram-kb", type=float)
    p.add_argument("--max-latency-ms", type=float)
    p.add_argument("--device")
    p.add_argument("--strategy", help="optuna (the default: multivariate TPE), tpe, nsga2, random, kerastuner-bayes, "
                                      "kerastuner-hyperband")
    p.add_argument("--sampler", help=argparse.SUPPRESS)  # the earlier name of --strategy
    p.add_argument("--seed", type=int)
    p.add_argument("--storage", help="an Optuna RDB URL or a journal file (default: SQLite in --out)")
    p.add_argument("--data-dir")
    p.add_argument("--ray-address", help="run trials on a Ray cluster: 'auto' inside one, or the head's host:port")
    p.add_argument("--workers", type=int, help="trials at a time on Ray (a local Ray is started when no --ray-address)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray resources per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray GPUs per trial (default 0)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("pareto", help="show the Pareto set of a finished search")
    p.add_argument("run", help="the search's output folder")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_pareto)

    p = sub.add_parser("baselines", help="train the study's Custom/VGG16/MobileNet and convert them through its eight columns")
    p.add_argument("--dataset", required=True)
    p.add_argument("--models", default="all", help="comma-separated: custom, vgg16, mobilenet (default all)")
    p.add_argument("--modes", default="all", help="comma-separated columns of paper_results.csv (default all)")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--input-scale", type=float, default=1.0, help="scale the study's input sizes down (0-1] for small machines")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("compare", help="a search's Pareto front against baselines: table, figure, which baselines are dominated")
    p.add_argument("run", help="the search's output folder")
    p.add_argument("baselines", help="the output folder of `nas baselines`")
    p.add_argument("--out", help="where to write (default RUN/compare)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="export a found model (.tflite, C array, model card), verified in TFLite Micro")
    p.add_argument("run", help="the search's output folder")
    p.add_argument("--out", required=True, help="folder to write the files to")
    p.add_argument("--best", action="store_true", help="the most accurate retrained model meeting every budget")
    p.add_argument("--trial", type=int, help="a trial number instead")
    p.add_argument("--name", default="g_model", help="C identifier of the model array")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        target = {"space": "space"}.get(args.command or "")
        parser.parse_args([target, "--help"] if target else ["--help"])
        return EXIT_USAGE
    if getattr(args, "json", False):
        _protect_stdout()
    from . import interrupt

    interrupt.install()
    try:
        return args.func(args)
    except NasError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
