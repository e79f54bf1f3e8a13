"""What pruning buys on each runtime: a model pruned to 0-90% sparsity, converted dense and with the
converter's sparse weight encoding, in float32 and int8; its .tflite size, and the instructions one
inference takes under LiteRT and TFLite Micro (callgrind: exact, repeatable). The device profiles'
`sparsity_modes` rest on this table.

    .venv/bin/python benchmarks/sparsity.py [--sparsities 0 0.5 0.75 0.9]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.75, 0.9])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from nas.candidate import TrainConfig, convert, fit_epochs, initialize, prune_to
    from nas.data import load_dataset, prepare
    from nas.latency import kernels_from_tflite
    from nas.measure import count_instructions, tflm_arena
    from nas.spec import ArchSpec, build_model

    spec = ArchSpec.from_dict({"resolution": 32, "stem_channels": 16, "stem_stride": 2, "head_channels": 128, "stages": [
        {"depth": 1, "channels": 16, "expansion": 1, "kernel": 3, "stride": 1},
        {"depth": 2, "channels": 32, "expansion": 4, "kernel": 3, "stride": 2},
        {"depth": 2, "channels": 64, "expansion": 4, "kernel": 3, "stride": 2}], "quantization": "float32"})
    data = load_dataset("digits", seed=args.seed)
    x, x_val = prepare(data.x_train, 32, 1), prepare(data.x_val, 32, 1)
    cfg = TrainConfig(epochs=2, prune_epochs=2, seed=args.seed)
    models = {}
    for sparsity in args.sparsities:
        model = build_model(spec, 1, 10, seed=args.seed)
        initialize(model, args.seed)
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        fit_epochs(model, x, data.y_train, x_val, data.y_val, 2, cfg, None, [])
        if sparsity:
            model = prune_to(model, sparsity, x, data.y_train, x_val, data.y_val, cfg, None)
        for mode in ("float32", "int8"):
            for sparse in (False, True):
                models[(sparsity, mode, sparse)] = convert(model, mode, x[:100], sparse=sparse)
        print(f"sparsity {sparsity}: converted", file=sys.stderr, flush=True)
    keys = list(models)
    litert = count_instructions([models[k] for k in keys], "litert")
    tflm = count_instructions([models[k] for k in keys], "tflm")
    print(f"\nPruned {spec.hash} (digits, 32 px), dense and sparse-encoded; instructions per inference (callgrind)")
    print(f"{'sparsity':>8} {'mode':<8} {'encoding':<8} {'bytes':>8} {'LiteRT instructions':>20} {'TFLite Micro':>24}  operators")
    for key, lite, micro in zip(keys, litert, tflm):
        sparsity, mode, sparse = key
        arena = tflm_arena(models[key])
        ops = sorted({k.op for k in kernels_from_tflite(models[key])} - {"ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "MEAN",
                                                                          "FULLY_CONNECTED", "SOFTMAX"})
        lite_text = f"{lite.instructions:,}" if lite.instructions else "fails: " + lite.reason[:40]
        micro_text = f"{micro.instructions:,}" if micro.instructions and arena.compatible else "cannot run it"
        print(f"{sparsity:>8} {mode:<8} {'sparse' if sparse else 'dense':<8} {len(models[key]):>8,} {lite_text:>20} "
              f"{micro_text:>24}  {' '.join(ops) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
