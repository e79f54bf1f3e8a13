"""`nas search`, `nas pareto`, `nas export`, `nas baselines`, `nas compare`: the search and what
comes out of it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError
from ._common import (add_parser, check_writable, nonnegative_float, nonnegative_int, number, positive_float, positive_int,
                      print_json, seed)


def cmd_search(args: argparse.Namespace) -> int:
    from ..logs import quiet_optuna
    from ..search import load_study
    from ..workflow import run_search

    if args.trial_timeout_s is not None and not (args.ray_address or args.workers):
        raise ConfigError("--trial-timeout-s needs trials on Ray (--workers or --ray-address): a trial in this process "
                          "cannot be stopped from outside")
    quiet_optuna()
    strategy = args.strategy or args.sampler  # "optuna" names the engine's default (load_study maps it)
    config = load_study(args.study, trials=args.trials, seed=args.seed, sampler=strategy, device=args.device,
                        warm_start=args.warm_start,
                        data_dir=args.data_dir, max_size_kb=args.max_size_kb, max_ram_kb=args.max_ram_kb,
                        max_latency_ms=args.max_latency_ms, max_energy_uj=args.max_energy_uj)
    out = Path(args.out) if args.out else Path("runs") / config.name
    summary = run_search(config, out, storage=args.storage, progress=not args.no_progress, ray_address=args.ray_address,
                         workers=args.workers, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                         time_budget_s=args.time_budget_s, join=args.join, trial_timeout_s=args.trial_timeout_s)
    if args.json:
        print_json({"out": str(summary.out_dir), "trained": summary.trained, "failed": summary.failed,
                    "screened": summary.screened, "final": summary.final, "elapsed_s": round(summary.elapsed_s, 1),
                    **({"stopped": summary.stopped} if summary.stopped else {})})
    else:
        print(f"{summary.trained} trained, {summary.failed} failed, {summary.screened} rejected before training, "
              f"{summary.final} retrained; {summary.elapsed_s:.0f} s. Outputs in {summary.out_dir}/ "
              "(pareto.csv, trials.csv, report.md)")
        if summary.stopped:
            print(f"Stopped early, as planned: {summary.stopped}")
        _print_pareto(Path(summary.out_dir))
    return 0


def _pareto_table(out: Path):
    from ..outputs import read_pareto

    path = out / "pareto.csv"
    if not path.is_file():
        raise ConfigError(f"{out} holds no pareto.csv; run `nas search ... --out {out}` (again, to resume) first")
    return read_pareto(path)


def _print_pareto(out: Path) -> None:
    table = _pareto_table(out)
    if table.empty:
        print("No retrained model meets every budget.")
        return
    view = table.assign(**{
        "val %": (100 * table["val_accuracy"]).round(2),
        "test %": (100 * table["test_accuracy"]).round(2),
        "size KB": (table["size_bytes"] / 1024).round(1),
        "RAM KB": (table["peak_ram_bytes"] / 1024).round(1),
        "latency ms": table["latency_ms"].round(3),
    })
    columns = ["trial", "val %", "test %", "size KB", "RAM KB", "latency ms", "quantization", "sparsity", "peak_ram_source"]
    if "energy_uj" in table and table["energy_uj"].notna().any():
        view["energy uJ"] = table["energy_uj"].round(1)
        columns.insert(6, "energy uJ")
    print(view[columns].to_string(index=False))
    print("(chosen and ranked on validation; test measured once and reported)")
    print(_latency_words(out))


def _latency_words(out: Path) -> str:
    """Where the table's latency comes from, with the error of the model that gives it."""
    from ..latency import calibration_score, load_device
    from ..search import load_run_config

    device = load_device(load_run_config(out).device)
    if device.latency_source == "host_measurement":
        return f"(latency: measured on this host, {device.name})"
    from ..outputs import latency_provenance

    _, mean, largest = latency_provenance(device.name)
    lead = (f"error for a model no board has run, which each of these is: mean {mean:.0f}%, max {largest:.0f}%; "
            if mean is not None and largest is not None else "")
    return f"(latency: milliseconds on {device.name}, predicted; {lead}the latency model: {calibration_score(device)})"


def cmd_pareto(args: argparse.Namespace) -> int:
    out = Path(args.run)
    if args.json:
        table = _pareto_table(out)
        print_json(json.loads(table.to_json(orient="records")))
    elif args.csv:
        sys.stdout.write(_pareto_table(out).to_csv(index=False))
    else:
        _print_pareto(out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..outputs import export_model

    if args.best == (args.trial is not None):
        raise ConfigError("say which model to export: --best or --trial N (one of them)")
    core = None if args.firmware_core == "none" else args.firmware_core or "board"
    card = export_model(Path(args.run), Path(args.out), trial=args.trial, name=args.name, data_dir=args.data_dir,
                        firmware_core=core)
    if args.json:
        print_json(card)
    else:
        m = card["metrics"]
        agreement = f"{m['tflm_agreement']:.2%}" if m["tflm_agreement"] is not None else "n/a"
        runtime = m["test_accuracy_source"].split(" (")[0].split(",")[0]
        proxy, f = card["source"] != "final retraining", card["firmware"]
        print(f"exported trial {card['trial']} to {args.out}/"
              + (" (WARNING: proxy training only, never retrained with the final settings: its accuracy is the "
                 "short proxy run's; `nas search` retrains the Pareto set)" if proxy else "")
              + f": model.tflite ({m['size_bytes']} bytes), model_data.h/.cc, model_card.json/.md"
              + (", firmware/" if f.get("sources") else "") + "; "
              f"test accuracy {m['test_accuracy']:.2%} ({runtime}; LiteRT {m['test_accuracy_litert']:.2%}), "
              f"TFLite Micro agreement {agreement}, arena {m['tflm_arena_bytes']} bytes")
        if f["measured"]:
            print(f"firmware/ for the {f['core']} ({f['runtime']}, measured under QEMU): flash "
                  f"{f['flash_bytes'] / 1024:.1f} KB, RAM {f['ram_bytes'] / 1024:.1f} KB, {f['instructions']:,} instructions "
                  "per inference")
        else:
            print(f"firmware: not measured on a core: {f['why']}")
        if f.get("build_and_run"):
            print(f"build and run: {f['build_and_run']}")
            if f.get("build_and_run_host"):
                print(f"build and run on this machine: {f['build_and_run_host']}")
        elif f.get("build_and_run_host"):
            print(f"build and run: {f['build_and_run_host']}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ..logs import quiet_optuna
    from ..outputs import serve_dashboard

    quiet_optuna()
    try:
        serve_dashboard(Path(args.run), port=args.port, storage=args.storage,
                        ready=lambda where: print(f"optuna-dashboard for {where} (Ctrl-C stops it)", flush=True))
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from ..outputs import COLUMNS, MODELS, run_baselines, write_baselines

    # names are checked by run_baselines before anything is loaded or written
    models = list(MODELS) if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    columns = list(COLUMNS) if args.modes == "all" else [c.strip() for c in args.modes.split(",") if c.strip()]
    out = Path(args.out)
    check_writable(out)
    show = (lambda message: None) if args.json else (lambda message: print(message, file=sys.stderr, flush=True))
    rows = run_baselines(args.dataset, models, columns, out, data_dir=args.data_dir, epochs=args.epochs,
                         batch_size=args.batch_size, max_train_samples=args.max_train_samples,
                         input_scale=args.input_scale, seed=args.seed, progress=show)
    write_baselines(rows, columns, out)
    if args.json:
        print_json([{"dataset": r.dataset, "input": r.input, "model": r.model, "values": r.values, "notes": list(r.notes),
                     "split": r.split.to_dict() if r.split else None} for r in rows])
    else:
        print((out / "report.md").read_text())
        print(f"wrote {out / 'baselines.csv'} and {out / 'report.md'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..outputs import compare

    result = compare(Path(args.run), Path(args.baselines), Path(args.out) if args.out else None)
    if args.json:
        print_json(result)
        return 0
    print(Path(result["table"]).read_text())
    print(f"wrote {result['table']}" + (f" and {result['figure']}" if result["figure"] else " (no figure: matplotlib missing)"))
    return 0


def register(sub) -> None:
    """Add `search`, `pareto`, `baselines`, `compare` and `export` to the `nas` parser's subcommands."""
    from ..firmware import CORES

    p = add_parser(sub, "search", help="run (or resume) a multi-objective search from a study file")
    p.add_argument("study", help="a study YAML file, or the name of one in studies/")
    p.add_argument("--out", help="output folder (default runs/<study name>); running again resumes")
    p.add_argument("--trials", type=positive_int, help="total finished trained trials the study should hold")
    p.add_argument("--max-size-kb", type=positive_float)
    p.add_argument("--max-ram-kb", type=positive_float)
    p.add_argument("--max-latency-ms", type=positive_float, help="milliseconds on the study's device (a board: that board's ms)")
    p.add_argument("--max-energy-uj", type=positive_float, help="microjoules per inference on a board that published energy")
    p.add_argument("--device")
    p.add_argument("--strategy", help="optuna or guided (the default: a feasible space-filling start, then a surrogate "
                                      "and expected hypervolume improvement, with successive halving), tpe, nsga2, random, "
                                      "kerastuner-bayes, kerastuner-hyperband")
    p.add_argument("--warm-start", metavar="RUN", help="an earlier search's output folder (same space and device): its "
                                                       "best specs are trained first")
    p.add_argument("--time-budget-s", type=positive_float, help="stop asking for trials after this many seconds (trials in flight "
                                                       "finish; --trials still caps the count)")
    p.add_argument("--trial-timeout-s", type=positive_float,
                   help="on Ray: fail a trial with no result this long after it started, and stop its worker "
                        "(default: 4x the longest trained trial so far, at least 300 s, once 3 have trained)")
    p.add_argument("--sampler", help=argparse.SUPPRESS)  # the earlier name of --strategy
    p.add_argument("--seed", type=seed)
    p.add_argument("--storage", help="an Optuna RDB URL (postgresql://, mysql://, sqlite:///) or a journal file "
                                     "(default: SQLite in --out)")
    p.add_argument("--join", action="store_true", help="search a study that another driver is searching now, together "
                                                       "(without it, that is refused)")
    p.add_argument("--data-dir")
    p.add_argument("--ray-address", help="run trials on a Ray cluster: 'auto' inside one, or the head's host:port")
    p.add_argument("--workers", type=positive_int, help="trials at a time on Ray (a local Ray is started when no --ray-address)")
    p.add_argument("--cpus-per-trial", type=positive_float, default=1.0, help="Ray resources per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=nonnegative_float, default=0.0, help="Ray GPUs per trial (default 0)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = add_parser(sub, "pareto", help="show the Pareto set of a finished search")
    p.add_argument("run", help="the search's output folder")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_pareto)

    p = add_parser(sub, "baselines", help="train the study's Custom/VGG16/MobileNet and convert them through its eight columns")
    p.add_argument("--dataset", required=True)
    p.add_argument("--models", default="all", help="comma-separated: custom, vgg16, mobilenet (default all)")
    p.add_argument("--modes", default="all", help="comma-separated columns of paper_results.csv (default all)")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--max-train-samples", type=number(int, least=10),
                   help="train on a random subset this large (10 or more)")
    p.add_argument("--input-scale", type=number(float, above=0.0, most=1.0), default=1.0,
                   help="scale the study's input sizes down (0-1] for small machines")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_baselines)

    p = add_parser(sub, "compare", help="a search's Pareto front against baselines: table, figure, which baselines are dominated")
    p.add_argument("run", help="the search's output folder")
    p.add_argument("baselines", help="the output folder of `nas baselines`")
    p.add_argument("--out", help="where to write (default RUN/compare)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = add_parser(sub, "dashboard", help="optuna-dashboard on a search's study, on 127.0.0.1 (needs the dashboard extra)")
    p.add_argument("run", help="the search's output folder")
    p.add_argument("--port", type=number(int, least=0, most=65535), default=8080,
                   help="port on 127.0.0.1 (default 8080; 0 picks a free one)")
    p.add_argument("--storage", help="the search's --storage, if it used one")
    p.set_defaults(func=cmd_dashboard)

    p = add_parser(sub, "export", help="export a found model (.tflite, C array, model card), verified in TFLite Micro")
    p.add_argument("run", help="the search's output folder")
    p.add_argument("--out", required=True, help="folder to write the files to")
    p.add_argument("--best", action="store_true",
                   help="the retrained model within every budget with the highest validation accuracy (ties: smaller)")
    p.add_argument("--trial", type=nonnegative_int, help="a trial number instead")
    p.add_argument("--name", default="g_model", help="C identifier of the model array")
    p.add_argument("--data-dir")
    p.add_argument("--firmware-core", choices=[*CORES, "none"],
                   help="measure the firmware on this core's Arm build and write its sources to OUT/firmware/ "
                        "(default: the study board's core, where the Arm build is set up: `make arm`)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)
