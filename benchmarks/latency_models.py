"""Latency models against their rulers: held-out accuracy, the MACs-linear floor, arena estimate,
microcontroller leave-one-out, prediction cost. With --write it also produces the shipped
artifacts in latency_models/ (the same fitting code as `nas calibrate`, over one shared sample
set, so the two instruction-count devices are fitted on the same models).

    python benchmarks/latency_models.py --samples 300 --extra-generic 250 --op-samples 6 --cache runs/latency-cache --write
    python benchmarks/latency_models.py --wallclock 150 --cache runs/latency-cache --write   # host-litert

--cache keeps the converted samples and their measurements, so a rerun refits without
rebuilding or recounting (building and counting 300 models takes most of an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import copy
import os
import pickle
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from nas.calibration import (HELD_OUT_FRACTION, OP_BUILDERS, host_artifact, make_op_samples, make_samples,  # noqa: E402
                             measure_samples, op_sample_stem, write_artifact)
from nas.latency import artifact_path, load_device  # noqa: E402
from nas.spec import QUANT_MODES  # noqa: E402

ICOUNT_DEVICES = ("host-tflm-icount", "host-litert-icount")


def _load(cache: Path | None, name: str):
    if cache and (cache / name).is_file():
        with open(cache / name, "rb") as fh:
            return pickle.load(fh)
    return None


def _save(cache: Path | None, name: str, value) -> None:
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / name, "wb") as fh:
            pickle.dump(value, fh)


def _row(label: str, v: dict) -> str:
    if "within_10pct" not in v:
        return f"| {label} | {v.get('n', 0)} | {v.get('note', '')} | | | |"
    floor = v.get("macs_linear_floor", {})
    floor_text = f"{floor['within_10pct']:.0%} / {floor['spearman']:.3f}" if floor else "-"
    return (f"| {label} | {v['n']} | {v.get('regressor', 'per mode')} | {v['within_10pct']:.0%} | {v['spearman']:.4f} | "
            f"{v['mape_pct']:.1f}% | {floor_text} |")


def _renamed(features: dict | None) -> dict | None:
    """A record's features under the kernel reader's current names (issue 15 split them by builtin
    code and variant): float16 weight DEQUANTIZE is `dequantize/float16-float32`; softmax and fully
    connected layers count their rows (`px`), one per layer in every model the records hold."""
    if features is None:
        return None
    out = {}
    for key, value in features.items():
        family, feature = key.split(":")
        out[("dequantize/float16-float32" if family == "dequantize" else family) + ":" + feature] = value
    if "softmax:n" in out:
        out["softmax:px"] = out["softmax:n"]
    if "fc:macs" in out:
        out["fc:px"] = out["fc:n"]
    return out


def _from_records(device, samples) -> list:
    """The shipped artifact's measured records (features and counts of the models they were taken
    on), plus the cached space and plain models as arena-only samples (the TFLite Micro interpreter
    measures an arena in a second; callgrind takes most of an hour for those models)."""
    from nas.calibration import Sample
    from nas.measure import tflm_arena

    out = [Sample(r["name"], r["source"], r["mode"], b"", rows=_renamed(r["features"]), measured=r["measured"],
                  reason=r["reason"]) for r in device.artifact["samples"] if not r["name"].startswith("arena-")]
    if device.runtime == "tflm":
        for s in samples:
            if s.source != "operators" and s.tflite and device.runs(s.mode):
                arena = tflm_arena(s.tflite)
                if arena.compatible:
                    out.append(Sample(f"arena-{s.name}", s.source, s.mode, s.tflite, arena_bytes=arena.arena_bytes,
                                      arena_tail=arena.tail_bytes, reason="arena only"))
    return out


def _internal_reshapes(features: dict | None) -> dict | None:
    """A plain model's recorded XNNPACK features with its reshape priced as the kernel reader now
    prices one between two XNNPACK operators (`reshape/internal`, elided): a plain model's only
    reshape is its Flatten, between a convolution or pool and a dense layer (`_sampling.py`)."""
    if not features or "reshape:n" not in features:
        return features
    out = {k: v for k, v in features.items() if not k.startswith("reshape:")}
    out["reshape/internal:n"] = features["reshape:n"]
    return out


def _around(ops):
    """A test of a sample name: whether it is a generated model around one of `ops` (`op_sample_stem`,
    then the draw and the int8 io type: SUB's do not take SUB/broadcast's, op-sub-broadcast-0)."""
    import re

    stems = "|".join(re.escape(op_sample_stem(op)) for op in ops)
    pattern = re.compile(rf"^(arena-)?(?:{stems})-\d+(-io\w+)?$") if ops else None
    return lambda name: bool(pattern and pattern.match(name))


_EXTENDED = "; its tail extended to the operators it never saw on"


def arena_operator_samples(args, cache: Path | None) -> list:
    """Generated operator models (--op-samples around every operator, in the modes TFLite Micro
    runs) with the arena the TFLite Micro interpreter allocates them in, head and tail: what the
    arena fit's tail learns the operators it never saw from. Cached: building and bisecting ~750
    arenas takes ~15 minutes on 2 cores."""
    from concurrent.futures import ThreadPoolExecutor

    from nas.measure import tflm_arena

    samples = _load(cache, "arena-op-samples.pkl")
    if samples is None:
        start = time.time()
        samples = make_op_samples(args.op_samples, ("float32", "int8", "int16x8"), args.seed + 11)
        for s in samples:
            s.name = "arena-" + s.name

        def measure(s):
            if s.tflite:
                arena = tflm_arena(s.tflite)
                measured = (arena.arena_bytes, arena.tail_bytes) if arena.compatible else (None, None)
                s.arena_bytes, s.arena_tail = measured
                s.reason = s.reason or ("" if arena.compatible else arena.reason)

        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # each arena is bisected in a worker process
            list(pool.map(measure, samples))
        print(f"built {len(samples)} operator models and measured {sum(1 for s in samples if s.arena_bytes)} arenas "
              f"in {time.time() - start:.0f} s", file=sys.stderr)
        _save(cache, "arena-op-samples.pkl", samples)
    return samples


def recount_operators(name: str, samples, args, cache: Path | None) -> dict:
    """The device refitted on the shipped artifact's space and plain records (counts and features
    as recorded) and on `samples`, the generated operator models rebuilt and counted afresh (what
    a change to how operators are read needs); the TFLite Micro arena fit and its arena-only
    records are the shipped artifact's, kept as they were.

    With --add-operators, `samples` are only the models around the added operators, and the
    shipped operator records are kept too (what adding an operator, and no change to how the
    others are read, needs: their counts stand)."""
    from nas.calibration import Sample

    device = load_device(name)
    shipped = device.artifact
    xnnpack = shipped.get("feature_set") == "xnnpack"
    added = _around(args.add_operators or ())
    samples = [s for s in samples if added(s.name)] if args.add_operators else samples  # only the operators asked for
    kept = [Sample(r["name"], r["source"], r["mode"], b"",
                   rows=_internal_reshapes(r["features"]) if xnnpack and r["source"] == "generic" else r["features"],
                   measured=r["measured"], reason=r["reason"])
            for r in shipped["samples"] if (r["source"] != "operators" or (args.add_operators and not added(r["name"])))
            and not r["name"].startswith("arena-")]
    ops = _load(cache, f"op-measured{'-added' if args.add_operators else ''}-{name}.pkl") or []
    known = {(s.name, s.mode) for s in ops}
    todo = [copy.copy(s) for s in samples if device.runs(s.mode) and (s.name, s.mode) not in known]
    if todo:  # models built since the cache was written are measured and appended
        start = time.time()
        measure_samples(todo, device)
        print(f"{name}: measured {sum(1 for s in todo if s.measured)}/{len(todo)} operator models in "
              f"{time.time() - start:.0f} s", file=sys.stderr)
        ops += todo
        _save(cache, f"op-measured{'-added' if args.add_operators else ''}-{name}.pkl", ops)
    wanted = {(s.name, s.mode) for s in samples}
    ops = [s for s in ops if (s.name, s.mode) in wanted]  # a cache written for other operators adds nothing
    artifact = host_artifact(device, kept + ops, args.seed,
                             {"command": "python benchmarks/latency_models.py " + " ".join(sys.argv[1:])})
    if shipped.get("arena"):
        artifact["arena"] = copy.deepcopy(shipped["arena"])
        artifact["provenance"]["arena"] = shipped["provenance"].get("arena", "kept from the shipped artifact")
        modes = artifact["arena"]["modes"]
        if "int8" in modes and "int16x8" in modes and modes["int16x8"].get("init") != modes["int8"]["init"]:
            # int16x8 kernels prepare the same per-channel data as int8 ones (a multiplier and a shift a
            # channel); its own init line was fitted on a handful of models where allocation outgrows
            # head + tail. On the 14 generated int16x8 operator models where it does, int8's lines
            # price 57% within 10% against its own 29% (2026-12-02).
            modes["int16x8"]["init"] = modes["int8"]["init"]
            artifact["provenance"]["arena"] += "; int16x8 allocates with int8's init lines (the same per-channel prepare data)"
        # the arena-only records the kept fit was made on (its operator models' too, unless it is extended afresh)
        artifact["samples"] += [r for r in shipped["samples"] if r["name"].startswith("arena-")
                                and not (args.extend_arena and r["name"].startswith("arena-op-"))]
        if args.extend_arena:
            from nas.calibration import extend_arena, sample_records

            extra = arena_operator_samples(args, cache)
            # the counted operator models with their arenas, less those the arena samples already hold (a
            # builder after `_SHARED_GENERATOR` draws the same k-th model for both)
            twins = {(s.name, s.mode) for s in extra}
            more = [s for s in ops if s.arena_tail is not None and ("arena-" + s.name, s.mode) not in twins]
            artifact["arena"] = extend_arena(artifact["arena"], extra + more, args.seed)
            artifact["samples"] += sample_records([s for s in extra if s.arena_bytes])
            kept_note = artifact["provenance"]["arena"].split(_EXTENDED)[0]
            artifact["provenance"]["arena"] = (
                f"{kept_note}{_EXTENDED} {len(extra) + len(more)} generated operator models (`extend_arena`: their own "
                "terms only, fitted on what the kept terms leave of each measured tail)")
    if args.write:
        write_artifact(artifact_path(device.latency_model), artifact)
    return artifact


def host_device(name: str, samples, args, cache: Path | None) -> dict:
    device = load_device(name)
    mine = _load(cache, f"measured-{name}.pkl")
    if mine is None and args.counts_from_artifacts:
        mine = _from_records(device, samples)
        _save(cache, f"measured-{name}.pkl", mine)
    mine = mine or []
    known = {(s.name, s.mode) for s in mine}
    todo = [copy.copy(s) for s in samples if device.runs(s.mode) and (s.name, s.mode) not in known
            and (s.source == "operators" or not args.counts_from_artifacts)]
    if todo:  # samples added since the cache was written are measured and appended
        for s in todo:
            s.measured, s.arena_bytes, s.arena_tail, s.reason = None, None, None, s.reason if not s.tflite else ""
        start = time.time()
        measure_samples(todo, device)
        print(f"{name}: measured {sum(1 for s in todo if s.measured)}/{len(todo)} in {time.time() - start:.0f} s", file=sys.stderr)
        mine += todo
        _save(cache, f"measured-{name}.pkl", mine)
    # host_artifact recomputes the features, so a cache outlives changes to them
    artifact = host_artifact(device, mine, args.seed,
                             {"command": "python benchmarks/latency_models.py " + " ".join(sys.argv[1:])})
    if args.write:
        write_artifact(artifact_path(device.latency_model), artifact)
    return artifact


def prediction_cost(name: str, count: int = 2000) -> float:
    from nas.spec import load_space

    device = load_device(name)
    rng = np.random.default_rng(0)
    space = load_space("mobilenet_tiny")
    specs = [space.sample(rng).replace(quantization="int8") for _ in range(count)]
    start = time.perf_counter()
    for spec in specs:
        device.predict(spec, 1, 10)
    return (time.perf_counter() - start) / count * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--generic-fraction", type=float, default=0.2, help="share of plain models in --samples")
    parser.add_argument("--extra-generic", type=int, default=250,
                        help="and this many more plain models (seed + 7): the tail the spaces alone leave unfitted")
    parser.add_argument("--op-samples", type=int, default=6,
                        help="and this many generated models around each operator (seed + 11), in every mode")
    parser.add_argument("--counts-from-artifacts", action="store_true",
                        help="take the space and plain models' instruction counts from the shipped artifacts' records "
                             "and count only the operator samples (the cached space and plain models then serve the arena fit)")
    parser.add_argument("--recount-operators", action="store_true",
                        help="rebuild and count only the operator samples, refit on them and on the shipped artifacts' "
                             "space and plain records, keep the shipped TFLite Micro arena fit")
    parser.add_argument("--add-operators", nargs="+", choices=sorted(OP_BUILDERS), metavar="OPERATOR",
                        help="with --recount-operators: build and count only the models around these operators "
                             "(--op-samples each) and keep every shipped record, operator models included")
    parser.add_argument("--extend-arena", action="store_true",
                        help="with --recount-operators: extend the kept TFLite Micro arena fit to every operator, on "
                             "generated operator models whose arena the interpreter measures (--op-samples each)")
    parser.add_argument("--devices", nargs="+", choices=ICOUNT_DEVICES, default=list(ICOUNT_DEVICES),
                        help="refit only these instruction-count devices (the others' artifacts stay as shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--write", action="store_true", help="write the artifacts into latency_models/")
    parser.add_argument("--wallclock", type=int, default=0, help="also calibrate host-litert on this many of the samples")
    args = parser.parse_args()

    if args.add_operators and not args.recount_operators:
        parser.error("--add-operators goes with --recount-operators")
    if args.recount_operators:
        cached = "op-samples-added.pkl" if args.add_operators else "op-samples.pkl"
        samples = _load(args.cache, cached) or []
        built = {s.name for s in samples}
        todo = tuple(op for op in args.add_operators or () if not any(map(_around([op]), built)))
        if not samples or todo:  # operators added since the cache was written are built and appended
            start = time.time()
            samples += make_op_samples(args.op_samples, QUANT_MODES, args.seed + 11,
                                       ops=todo if args.add_operators else None)
            print(f"built the operator samples in {time.time() - start:.0f} s", file=sys.stderr)
            _save(args.cache, cached, samples)
    else:
        samples = _load(args.cache, "samples.pkl")
    if samples is None:
        start = time.time()
        samples = make_samples(args.samples, QUANT_MODES, args.seed, generic_fraction=args.generic_fraction)
        print(f"built {len(samples)} samples in {time.time() - start:.0f} s", file=sys.stderr)
        _save(args.cache, "samples.pkl", samples)
    if args.extra_generic and not args.recount_operators and not any(s.name.startswith("generic-b") for s in samples):
        extra = make_samples(args.extra_generic, QUANT_MODES, args.seed + 7, generic_fraction=1.0)
        for s in extra:
            s.name = s.name.replace("generic-", "generic-b")
        samples += extra
        _save(args.cache, "samples.pkl", samples)
    if args.op_samples and not any(s.source == "operators" for s in samples):
        start = time.time()
        samples += make_op_samples(args.op_samples, QUANT_MODES, args.seed + 11)
        print(f"built the operator samples in {time.time() - start:.0f} s", file=sys.stderr)
        _save(args.cache, "samples.pkl", samples)
    if args.recount_operators:
        counted = ("around the added operators built and counted; every other model's count is"
                   if args.add_operators else "rebuilt and counted; the space and plain models' counts are")
        print(f"## Latency models ({len(samples)} generated operator models {counted} the shipped artifacts' "
              f"records; held-out {HELD_OUT_FRACTION:.0%})\n")
    else:
        print(f"## Latency models ({len(samples)} sampled models: "
              f"{sum(s.source == 'generic' for s in samples)} plain models outside the search spaces, "
              f"{sum(s.source == 'operators' for s in samples)} generated around single operators; "
              f"held-out {HELD_OUT_FRACTION:.0%})\n")
    print("| device / mode | held-out n | regressor | within ±10% | Spearman | mean abs error | MACs-linear floor (±10% / Spearman) |")
    print("|---|---|---|---|---|---|---|")
    artifacts = {}
    for name in args.devices:
        fit = recount_operators if args.recount_operators else host_device
        artifact = artifacts[name] = fit(name, samples, args, args.cache)
        for mode, v in artifact["validation"].items():
            if not mode.startswith("all_"):
                print(_row(f"{name} {mode}", v))
    print("\nWhere the held-out models come from (search-space specs / plain models outside the spaces / "
          "generated operator models):\n")
    for name in args.devices:
        v = artifacts[name]["validation"]
        parts = [f"{key.split('_', 1)[1].replace('_', ' ')}: n={v[key]['n']}, {v[key]['within_10pct']:.0%} within ±10%, "
                 f"max error {v[key]['max_error_pct']:.0f}%" for key in ("all_search_spaces", "all_outside_spaces",
                                                                          "all_operators") if key in v]
        print(f"- {name}: " + "; ".join(parts))
    if args.wallclock:
        from nas.measure import repeatability

        usable = [s for s in samples if s.tflite]
        pick = np.random.default_rng(args.seed).permutation(len(usable))[: args.wallclock]
        pool = [usable[i] for i in sorted(pick)]
        floor = repeatability([s.tflite for s in pool])
        artifact = artifacts["host-litert"] = host_device("host-litert", pool, args, None)
        artifact["provenance"]["repeatability_floor"] = floor
        if args.write:
            write_artifact(artifact_path("host-litert"), artifact)
        for mode, v in artifact["validation"].items():
            print(_row(f"host-litert {mode}", v))
        print(f"\nhost-litert repeatability floor (two passes of the protocol, {floor['n']} models): "
              f"{floor['within_10pct']:.0%} within ±10%, median difference {floor['median_abs_diff_pct']:.1f}%")

    arena = artifacts["host-tflm-icount"].get("arena") if "host-tflm-icount" in artifacts else None
    if arena:
        print("\n## TFLite Micro arena (greedy-planned head + fitted tail; held-out models)\n")
        print("| mode | held-out n | within ±10% | max error | mean error | liveness lower bound: mean / max error |")
        print("|---|---|---|---|---|---|")
        for mode, fitted in arena["modes"].items():
            a, raw = fitted.get("validation"), fitted.get("liveness_bound_validation")
            if a:
                print(f"| {mode} | {a['n']} | {a['within_10pct']:.0%} | {a['max_error_pct']:.2f}% | {a['mape_pct']:.2f}% | "
                      f"{raw['mape_pct']:.1f}% / {raw['max_error_pct']:.1f}% |")
            e = fitted.get("extension_validation")
            if e:
                b = e["before"]
                print(f"| {mode}, generated operator models (tail extended; before: {b['within_10pct']:.0%} within, "
                      f"max {b['max_error_pct']:.1f}%) | {e['n']} | {e['within_10pct']:.0%} | "
                      f"{e['max_error_pct']:.2f}% | {e['mape_pct']:.2f}% | |")

    print("\nMicrocontroller boards: `python benchmarks/board_catalog.py` (the catalog fitted on the MLPerf Tiny results).")

    if args.write:
        print("\n## Prediction cost (spec -> kernels -> prediction, 2,000 random specs)\n")
        for name in ("host-tflm-icount", "host-litert-icount", "cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1"):
            print(f"- {name}: {prediction_cost(name):.3f} ms per candidate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
