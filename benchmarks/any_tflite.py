"""Pricing any .tflite: real models held out of every fit, against callgrind's counts and the
TFLite Micro interpreter's arena, on both instruction-count devices and every board profile.

    python benchmarks/any_tflite.py --cache runs/latency-cache

Prints, per device, one table: the calibration's own held-out splits (search-space models, plain
models, generated operator models; from the artifact) and the held-out real models
(`benchmarks/real_models.py`: Keras applications and plain Keras architectures, converted as
deployed files are), with how many were priced, how many within ±10%, the median and the largest
error; then the arena, each real file, the boards and the prediction cost.
--cache keeps the built files and their counts (counting them takes ~15 minutes on 2 cores);
--cost-only prints only the prediction cost, --refusals-only only whether the predictor refuses exactly
the files each runtime cannot run; neither needs counts.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from nas.latency import board_devices, load_device  # noqa: E402

DEVICES = ("host-tflm-icount", "host-litert-icount")


def cached(cache: Path | None, name: str, make):
    """`make()`, kept in `cache/name` (a pickle) when a cache is given (fused_lstm.py uses it too)."""
    path = cache / name if cache else None
    if path and path.is_file():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    value = make()
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(value, fh)
    return value


def _measure(files, device):
    from nas.measure import count_instructions, tflm_arena

    todo = [f for f in files if f[3] is not None and device.runs(f[1])]
    counts = count_instructions([f[3] for f in todo], device.runtime)
    out = {}
    for f, count in zip(todo, counts):
        arena = None
        if device.runtime == "tflm" and count.instructions:
            measured = tflm_arena(f[3])
            arena = measured.arena_bytes if measured.compatible else None
        out[(f[0], f[1], f[2])] = (count.instructions, count.reason, arena)
    return out


_PREDICT_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from nas.latency import load_device
device = load_device("host-tflm-icount")
data = open({path!r}, "rb").read()
for _ in range(int(sys.argv[1])):
    device.predict(data)
"""


#: What makes callgrind's total of a Python process repeat (to a few per cent between processes, 2026-12-04): fixed string hashes, and one BLAS
#: thread (numpy's OpenBLAS threads otherwise spin for a varying number of instructions: repeated
#: counts of the same prediction differed by up to 25% with them).
_REPEATABLE = {"PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _predictor_instructions(data: bytes, repeats: int = 10) -> int:
    """Host instructions of one `predict` of `data` on host-tflm-icount: callgrind's total for
    1 + repeats predictions less its total for one (start-up and the artifact's first read cancel)."""
    import subprocess
    import tempfile

    from nas.measure import require_valgrind

    valgrind = require_valgrind()
    with tempfile.TemporaryDirectory() as tmp:
        model, script = Path(tmp) / "m.tflite", Path(tmp) / "predict.py"
        model.write_bytes(data)
        script.write_text(_PREDICT_SCRIPT.format(root=str(Path(__file__).resolve().parents[1]), path=str(model)))
        totals = []
        for n in (1, 1 + repeats):
            run = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(script),
                                  str(n)], capture_output=True, text=True, env={**os.environ, **_REPEATABLE})
            totals.append(int(run.stderr.split("Collected :")[1].split()[0]))
    return (totals[1] - totals[0]) // repeats


#: held-out set -> (its builders in real_models, cache-file prefix, label in the tables)
_SETS = {
    "real": ("REAL_MODELS", "", "first real set (guided the second pass)"),
    "fresh": ("FRESH_MODELS", "fresh-", "second real set (guided the third pass)"),
    "third": ("THIRD_MODELS", "third-", "third real set (guided the fourth pass)"),
    "fourth": ("FOURTH_MODELS", "fourth-", "fourth real set (guided the fifth pass)"),
    "fifth": ("FIFTH_MODELS", "fifth-", "fifth real set (guided the sixth pass)"),
    "sixth": ("SIXTH_MODELS", "sixth-", "**sixth real set, counted before this fit was final, scored once**"),
    "seventh": ("SEVENTH_MODELS", "seventh-",
                "**seventh real set, counted before the arena extension was final, scored once**"),
    "eighth": ("EIGHTH_MODELS", "eighth-", "eighth real set (guided the ninth pass)"),
    "ninth": ("NINTH_MODELS", "ninth-", "**ninth real set, counted before this fit was final, scored once**"),
}


def _stats(errors: list[float]) -> str:
    if not errors:
        return "- | - | -"
    e = np.abs(np.array(errors))
    return f"{np.mean(e <= 10):.0%} | {np.median(e):.1f}% | {e.max():.1f}%"


def _prediction_cost(built) -> None:
    """The prediction cost table: host wall clock per file up to 1 MB on host-tflm-icount, and the
    predictor's own instructions for the costliest (callgrind: a few per cent between processes, where
    the wall clock drifts by 40%)."""
    from nas.latency import parse_tflite

    device = load_device("host-tflm-icount")
    small = [f for f in built if len(f[3]) <= 1 << 20 and device.runs(f[1])]
    times = []
    for f in small:
        device.predict(f[3])  # warm: the artifact is read once
        best = float("inf")
        for _ in range(3):  # the least of three runs of ten: what the host's drift leaves least
            start = time.perf_counter()
            for _ in range(10):
                device.predict(f[3])
            best = min(best, (time.perf_counter() - start) / 10 * 1000)
        times.append(best)
    order = np.argsort(times)[::-1]
    print(f"### Prediction cost\n\nhost-tflm-icount, {len(small)} real files up to 1 MB (bytes -> kernels -> "
          f"instructions and arena), least of three runs of ten: mean {np.mean(times):.2f} ms, max {max(times):.2f} ms "
          f"per file (largest {max(len(f[3]) for f in small) // 1024} KB), {sum(t <= 1.0 for t in times)} of {len(small)} "
          "under 1 ms. The predictor's own instructions (callgrind over ten predictions less one, which move by a few "
          "per cent between processes where the wall clock drifts by 40%):\n")
    print("| file | KB | operators | ms (wall clock) | predictor instructions |")
    print("|---|---|---|---|---|")
    for i in order[:5]:
        f = small[i]
        ops = len(parse_tflite(f[3]).operators)
        print(f"| {f[0]} {f[1]}/{f[2]} | {len(f[3]) // 1024} | {ops} | {times[i]:.2f} | {_predictor_instructions(f[3]):,} |")


def _refusals(built) -> None:
    """Does the predictor refuse exactly the files the runtime cannot run? Every file of a mode the
    device runs, run once in the runtime and predicted."""
    from concurrent.futures import ThreadPoolExecutor

    from nas.measure import invokes

    print("### Refusals: the runtime against the predictor\n")
    print("Every file of a mode the device runs, invoked once in the runtime (the counting runner, no valgrind) and "
          "predicted.\n")
    print("| device | files | the runtime runs | priced of those | it cannot run | refused of those |")
    print("|---|---|---|---|---|---|")
    wrong = []
    for name in DEVICES:
        device = load_device(name)
        files = [f for f in built if device.runs(f[1])]
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda f: invokes(f[3], device.runtime), files))
        priced = [device.predict(f[3]) for f in files]
        ran = [p for p, r in zip(priced, runs) if r]
        failed = [p for p, r in zip(priced, runs) if not r]
        print(f"| {name} | {len(files)} | {len(ran)} | {sum(p.runs for p in ran)} | {len(failed)} | "
              f"{sum(not p.runs for p in failed)} |")
        wrong += [f"{name}: {f[0]} {f[1]}/{f[2]}: the runtime {'runs' if r else 'cannot run'} it, the predictor "
                  f"{'prices' if p.runs else 'refuses'} it" + ("" if p.runs else f" ({p.reason})")
                  for f, p, r in zip(files, priced, runs) if p.runs != r]
    for line in wrong:
        print(f"\n- {line}")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count-only", action="store_true",
                        help="build and count the files into --cache, print no prediction (a set is counted while a fit "
                             "is still being made, and scored once it is final)")
    parser.add_argument("--cost-only", action="store_true",
                        help="build the files into --cache and print only the prediction cost (no counts needed)")
    parser.add_argument("--refusals-only", action="store_true",
                        help="build the files into --cache and print only whether the predictor refuses exactly the files "
                             "each runtime cannot run (no counts needed; ~10 minutes on 2 cores)")
    parser.add_argument("--sets", nargs="+", choices=tuple(_SETS), default=list(_SETS),
                        help="the held-out sets to build, count and score (default: all)")
    args = parser.parse_args()

    import real_models

    sets = {key: cached(args.cache, f"{prefix or 'real-'}models.pkl",
                         lambda: real_models.build_real_models(args.seed, getattr(real_models, models)))
            for key, (models, prefix, _) in _SETS.items() if key in args.sets}
    labels = {key: label for key, (_, _, label) in _SETS.items()}
    prefixes = {key: prefix for key, (_, prefix, _) in _SETS.items()}
    built_of = {key: [f for f in files if f[3] is not None] for key, files in sets.items()}
    if args.cost_only:
        _prediction_cost([f for files in built_of.values() for f in files])
        return 0
    if args.refusals_only:
        _refusals([f for files in built_of.values() for f in files])
        return 0
    if args.count_only:
        for name in DEVICES:
            device = load_device(name)
            for which, files in sets.items():
                cached(args.cache, f"{prefixes[which]}real-measured-{name}.pkl", lambda: _measure(files, device))
        print(f"counted {sum(map(len, built_of.values()))} files into {args.cache}")
        return 0
    for key, files in sets.items():
        print(f"## {labels[key]}: {len(built_of[key])} held-out real model files "
              f"({len({f[0] for f in files})} architectures; {len(files) - len(built_of[key])} conversions the converter refused)\n")
    per_file = {}
    for name in DEVICES:
        device = load_device(name)
        artifact = device.artifact
        v = artifact["validation"]
        print(f"### {name} (instructions, callgrind)\n")
        print("| models | n | priced | within ±10% | median error | max error |")
        print("|---|---|---|---|---|---|")
        for key, label in (("all_search_spaces", "search-space models (calibration's held-out split)"),
                           ("all_outside_spaces", "plain models outside the spaces (held-out split)"),
                           ("all_operators", "generated operator models (held-out split)")):
            if key in v:
                s = v[key]
                print(f"| {label} | {s['n']} | {s['n']} | {s['within_10pct']:.0%} | (mean {s['mape_pct']:.1f}%) | "
                      f"{s['max_error_pct']:.1f}% |")
        refused = []
        for which, files in sets.items():
            measured = cached(args.cache, f"{prefixes[which]}real-measured-{name}.pkl", lambda: _measure(files, device))
            errors, arena_errors, priced, runnable = [], [], 0, 0
            for f in built_of[which]:
                key = (f[0], f[1], f[2])
                if key not in measured or not measured[key][0]:
                    continue
                runnable += 1
                count, _, arena = measured[key]
                p = device.predict(f[3])
                if not p.runs:
                    refused.append(f"{f[0]} {f[1]}/{f[2]}: {p.reason}")
                    continue
                priced += 1
                err = 100 * (p.value / count - 1)
                errors.append(err)
                arena_err = 100 * (p.arena_bytes / arena - 1) if arena and p.arena_bytes else None
                if arena_err is not None:
                    arena_errors.append(arena_err)
                per_file.setdefault(key, {})[name] = (count, p, err, arena, arena_err)
            print(f"| {labels[which]} | {runnable} | {priced} ({priced / max(runnable, 1):.0%}) | {_stats(errors)} |")
            if arena_errors:
                print(f"| {labels[which].strip('*').split(',')[0]}: TFLite Micro arena | {len(arena_errors)} | "
                      f"{len(arena_errors)} | {_stats(arena_errors)} |")
        for line in refused:
            print(f"\nnot priced: {line}")
        print()
    built = [f for files in built_of.values() for f in files]
    print("### Each real file (instructions: error against callgrind; arena: against the TFLite Micro interpreter)\n")
    print("| model | mode / io | KB | TFLM error | TFLM arena error | LiteRT error | estimated operators |")
    print("|---|---|---|---|---|---|---|")
    for f in built:
        key = (f[0], f[1], f[2])
        row = per_file.get(key, {})
        tflm, litert = row.get("host-tflm-icount"), row.get("host-litert-icount")
        estimated = sorted({op for r in (tflm, litert) if r for op, _, _ in r[1].estimated})
        cells = [f"{tflm[2]:+.1f}%" if tflm else "-", f"{tflm[4]:+.1f}%" if tflm and tflm[4] is not None else "-",
                 f"{litert[2]:+.1f}%" if litert else "-"]
        print(f"| {f[0]} | {f[1]} / {f[2]} | {len(f[3]) // 1024} | {' | '.join(cells)} | {', '.join(estimated) or '-'} |")

    boards = board_devices()
    int8 = [f for f in built if f[1] == "int8"]
    priced_everywhere = sum(all(b.predict(f[3]).runs for b in boards) for f in int8)
    print(f"\n### Boards\n\n{priced_everywhere} of {len(int8)} int8 real files priced on all {len(boards)} "
          "microcontroller profiles (each prices through host-tflm-icount's kernel classes).\n")

    _refusals(built)
    _prediction_cost(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
