"""`nas space`, `nas datasets`, `nas evaluate`: looking at the parts before searching."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import NasError
from ._common import add_parser, check_writable, number, positive_int, print_json, read_text, seed


def cmd_space_list(args: argparse.Namespace) -> int:
    from ..spec import load_space, space_names

    rows = []
    for name in space_names():
        space = load_space(name)
        rows.append({"name": name, "description": space.description, "combinations": space.size(),
                     "resolution": list(space.choices["resolution"]), "quantization": list(space.choices["quantization"])})
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['name']:<18} {row['combinations']:.2e} combinations  resolution {row['resolution']}  {row['description']}")
    return 0


def cmd_space_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from ..spec import load_space

    space = load_space(args.space)
    rng = np.random.default_rng(args.seed)
    specs = [space.sample(rng) for _ in range(args.count)]
    if args.quantization:  # the deployment a board runs (an int8-only board prices no float32 spec)
        specs = [spec.replace(quantization=args.quantization) for spec in specs]
    samples = [{"space": space.name, "hash": spec.hash, "spec": spec.to_dict()} for spec in specs]
    print_json(samples[0] if args.count == 1 else samples)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..data import dataset_names, load_dataset

    rows = []
    for name in dataset_names():
        try:
            rows.append({"name": name, "available": True, **load_dataset(name, args.data_dir).summary()})
        except NasError as exc:
            rows.append({"name": name, "available": False, "reason": str(exc)})
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            if row["available"]:
                print(f"{row['name']:<14} {row['train']:>6} train {row['val']:>6} val {row['test']:>6} test  "
                      f"{row['image_size']}px x{row['channels']}  {len(row['classes'])} classes  from {row['source']}")
            else:
                print(f"{row['name']:<14} missing: {row['reason']}")
    return 0


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    from ..data import fetch_dataset, load_dataset

    paths = fetch_dataset(args.name, args.data_dir, mirror=args.mirror, size=args.size, progress=not args.no_progress)
    folder = paths[0].parent
    summary = load_dataset(args.name, folder, image_size=args.size).summary()  # proof that it loads from there
    if args.json:
        print_json({"name": args.name, "files": [str(p) for p in paths], **summary})
    else:
        print(f"{args.name}: {len(paths)} file(s) verified in {folder}: {summary['train']} train, {summary['val']} validation, "
              f"{summary['test']} test, {summary['image_size']} px")
    return 0


def _snr_range(text: str) -> tuple[float, float]:
    """`--snr-db LOW,HIGH`: two finite numbers from 0 to 60 dB (their order is `synth_keywords`' check)."""
    bound = number(float, least=0.0, most=60.0)
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in dB (such as 5,30), got {text!r}")
    low, high = (bound(part) for part in parts)
    return low, high


def cmd_datasets_synth_keywords(args: argparse.Namespace) -> int:
    from ..data import UNKNOWN_WORDS, synth_keywords

    def progress(done: int, total: int) -> None:
        if done == total or done % 200 == 0:
            print(f"\r{done}/{total} clips", end="\n" if done == total else "", file=sys.stderr, flush=True)

    made = synth_keywords(args.words, args.out, unknown_words=args.unknown_words.split(",") if args.unknown_words else
                          UNKNOWN_WORDS, test_voices=args.test_voices, val_voices=args.val_voices,
                          train_voices=args.train_voices, per_voice=args.per_voice, snr_db=tuple(args.snr_db),
                          noise_dir=args.noise_dir, seed=args.seed, progress=None if args.no_progress else progress)
    splits = made.manifest["splits"]
    if args.json:
        print_json({"out": str(made.out), **made.manifest})
    else:
        print(f"wrote {sum(s['clips'] for s in splits.values())} clips of {len(made.manifest['labels'])} labels to {made.out}: "
              + ", ".join(f"{name} {s['clips']} ({len(s['voices'])} voices)" for name, s in splits.items())
              + f"; no voice in two splits; {made.out / 'manifest.json'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..candidate import TrainConfig, evaluate_candidate
    from ..data import load_dataset
    from ..spec import ArchSpec

    spec = ArchSpec.from_json(read_text(args.arch))
    changes = {k: v for k, v in (("quantization", args.quant), ("sparsity", args.sparsity), ("resolution", args.resolution)) if v is not None}
    if changes:
        spec = spec.replace(**changes)
    if args.space:
        from ..spec import load_space

        load_space(args.space).validate(spec)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_train_samples=args.max_train_samples, seed=args.seed)
    if args.save_tflite:
        check_writable(Path(args.save_tflite).parent)

    device = None
    if args.device:
        from ..latency import load_device

        device = load_device(args.device)  # an unknown name fails here, before any training
    dataset = load_dataset(args.dataset, args.data_dir, seed=args.seed)
    result = evaluate_candidate(spec, dataset, cfg, split=args.split)
    if args.save_tflite and result.tflite is not None:
        from ..files import atomic_write_bytes

        atomic_write_bytes(Path(args.save_tflite), result.tflite)
    data = result.to_dict()
    if device is not None:
        data["device"] = _on_device(device, result)
    if args.json:
        print_json(data)
    else:
        _print_result(data)
    return 0 if result.status == "ok" else 1


def _on_device(device, result) -> dict:
    """The evaluated model on `device`: its latency, measured or predicted, with the stated error."""
    out = {"name": device.name, "latency_ms": None, "source": "", "error_pct": None, "error_max_pct": None}
    if not device.runs(result.spec.quantization):
        return {**out, "source": f"{device.name} does not run {result.spec.quantization} models"}
    if device.latency_source == "host_measurement":
        return {**out, "latency_ms": result.host_latency_ms, "source": "measured on this host (LiteRT, 1 thread, median)"}
    if result.tflite is None:
        return {**out, "source": "no converted model to price"}
    p = device.predict(result.tflite)
    if not p.runs:
        return {**out, "source": p.reason}
    if p.unit != "ms":
        return {**out, "instructions": round(p.value), "source": f"predicted by {device.name}'s latency model (instructions)",
                "error_pct": p.error_pct, "error_max_pct": p.error_max_pct}
    return {**out, "latency_ms": p.latency_ms, "source": f"predicted by {device.name}'s latency model",
            "error_pct": p.error_pct, "error_max_pct": p.error_max_pct}


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
    if "device" in d:
        on = d["device"]
        value = (f"{on['latency_ms']:.3f} ms" if on["latency_ms"] is not None
                 else f"{on['instructions']:,} instructions" if on.get("instructions") is not None else "not priced")
        error = (f", error for a model no board has run: mean {on['error_pct']:.0f}%, max {on['error_max_pct']:.0f}%"
                 if on["error_pct"] is not None and on["error_max_pct"] is not None else "")
        print(f"  on {on['name']}: {value} ({on['source']}{error})")


def register(sub) -> None:
    """Add `space`, `datasets` and `evaluate` to the `nas` parser's subcommands."""
    from ..spec import MAX_SPARSITY, QUANT_MODES

    space = add_parser(sub, "space", help="inspect search spaces and sample architectures")
    space_sub = space.add_subparsers(dest="space_command", metavar="SUBCOMMAND")
    p = add_parser(space_sub, "list", help="list the search spaces")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_space_list)
    p = add_parser(space_sub, "sample", help="print a seeded random architecture as JSON")
    p.add_argument("--space", required=True)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--count", type=positive_int, default=1)
    p.add_argument("--quantization", choices=QUANT_MODES, help="give every sample this quantization mode")
    p.set_defaults(func=cmd_space_sample)

    p = add_parser(sub, "datasets", help="list the datasets and whether their files are in place; `fetch` downloads one")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)
    fetch = p.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND")
    f = add_parser(fetch, "fetch", help="download a dataset's official files, verify their checksums, install them")
    f.add_argument("name", help="fashion_mnist, pneumonia or skin_lesion")
    f.add_argument("--data-dir", help="where to install (default: where `nas datasets` looks first)")
    f.add_argument("--mirror", help="a base URL serving the same file names (default: the publisher's; or $NAS_DATASET_MIRROR)")
    f.add_argument("--size", type=positive_int, default=28, help="MedMNIST image size: 28, 64, 128 or 224 (default 28)")
    f.add_argument("--no-progress", action="store_true")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_datasets_fetch)

    k = add_parser(fetch, "synth-keywords", help="make a keyword-spotting set with eSpeak NG: a split by voice, noise "
                                                 "at random SNRs, silence and unknown words (16 kHz WAV, 1 s clips)")
    k.add_argument("words", nargs="+", metavar="WORD", help="the keywords (MLPerf Tiny's: yes no up down left right on off stop go)")
    k.add_argument("--out", required=True, help="a new folder: <split>/<label>/*.wav, manifest.json, clips.csv")
    k.add_argument("--test-voices", type=positive_int, default=12, help="voices held out for test (default 12)")
    k.add_argument("--val-voices", type=positive_int, default=10, help="voices held out for validation (default 10)")
    k.add_argument("--train-voices", type=positive_int, help="voices for training (default: every other one)")
    k.add_argument("--per-voice", type=positive_int, default=4, help="clips of each word per voice (default 4)")
    k.add_argument("--snr-db", type=_snr_range, default=(5.0, 30.0), metavar="LOW,HIGH",
                   help="signal-to-noise ratios drawn from, in dB (default 5,30)")
    k.add_argument("--noise-dir", help="mix noise from these 16 kHz mono WAV files (default: white, pink and brown noise)")
    k.add_argument("--unknown-words", help="comma-separated words for _unknown_ (default: Speech Commands' other words)")
    k.add_argument("--seed", type=seed, default=0)
    k.add_argument("--no-progress", action="store_true")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_datasets_synth_keywords)

    p = add_parser(sub, "evaluate", help="train, convert and measure one architecture")
    p.add_argument("--dataset", required=True)
    p.add_argument("--arch", required=True, help="architecture JSON file (from `nas space sample`), or - for stdin")
    p.add_argument("--quantization", "--quant", dest="quant", choices=QUANT_MODES, help="override the spec's quantization")
    p.add_argument("--device", help="also price the converted model on this device (`nas devices`), with its stated error")
    p.add_argument("--sparsity", type=number(float, least=0.0, most=MAX_SPARSITY),
                   help=f"override the spec's pruning sparsity (0 to {MAX_SPARSITY})")
    p.add_argument("--resolution", type=positive_int, help="override the spec's input resolution")
    p.add_argument("--space", help="also check the spec against this search space")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--max-train-samples", type=number(int, least=10),
                   help="train on a random subset this large (10 or more)")
    p.add_argument("--split", choices=["val", "test"], default="val", help="split the accuracies are measured on")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--save-tflite", help="also write the converted model here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)
