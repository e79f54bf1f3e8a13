"""Final training on digits (issue 13): per model and seed, the accuracy of the float model, its
post-training-quantized (PTQ) int8 file, its quantization-aware-trained (QAT) int8 file, and the
same with a teacher (QAT+KD), each on validation and test, and the final-training time.

    python benchmarks/final_training.py --run runs/digits16     # the Pareto set of a finished search
    python benchmarks/final_training.py                         # the fixed specs below

Variants, all with the study's final recipe (cosine schedule with warm-up, label smoothing 0.1,
the dataset's augmentation) unless named:
    plain     the recipe before issue 13: constant rate, no smoothing, no augmentation; PTQ
    float     the recipe, the Keras model
    ptq       the recipe, PTQ int8
    qat       the recipe, then QAT fine-tuning, int8 from the QAT model
    kd+qat    distilled from a teacher (the widest spec below, float, trained once per seed), then QAT

Test accuracy is printed for the record; what a study would deploy is chosen on validation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Two int8 models under 16 KB found by `nas search studies/digits_demo.yaml --max-size-kb 16`, and the
#: teacher (a wider model of the same space, not deployable within 16 KB).
SPECS = {
    "teacher": {"resolution": 32, "stem_channels": 16, "stem_stride": 2, "head_channels": 128, "quantization": "float32",
                "sparsity": 0.0, "stages": [{"depth": 1, "channels": 24, "expansion": 4, "kernel": 3, "stride": 2},
                                            {"depth": 2, "channels": 48, "expansion": 4, "kernel": 3, "stride": 2}]},
}


def _specs_from_run(run: Path, top: int) -> dict[str, dict]:
    import pandas as pd

    pareto = pd.read_csv(run / "pareto.csv").head(top)
    return {f"trial {int(r.trial)}": json.loads(r.spec) for r in pareto.itertuples()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished search folder: benchmark its Pareto set")
    parser.add_argument("--top", type=int, default=2, help="how many Pareto models of --run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)

    import numpy as np

    from nas.candidate import FINAL_DEFAULTS, convert, train_candidate
    from nas.candidate._qat import qat_finetune  # noqa: the benchmark measures the stage itself
    from nas.data import load_dataset, prepare
    from nas.measure import litert_predict
    from nas.spec import ArchSpec

    students = _specs_from_run(args.run, args.top) if args.run else {k: v for k, v in SPECS.items() if k != "teacher"}
    if not students:
        parser.error("no student specs: pass --run with a finished search")
    recipe = replace(FINAL_DEFAULTS, epochs=args.epochs, patience=max(4, args.epochs // 5), qat_epochs=args.qat_epochs,
                     warmup_epochs=max(1.0, args.epochs / 20))
    plain = replace(recipe, schedule="constant", warmup_epochs=0.0, label_smoothing=0.0, augment=False)
    rows = []

    def acc(scores, y):
        return float(np.mean(scores.argmax(1) == y))

    for seed in range(args.seeds):
        data_s = load_dataset("digits", seed=seed)  # the split follows the seed too
        t_spec = ArchSpec.from_dict(SPECS["teacher"])
        xt = prepare(data_s.x_train, t_spec.resolution, 1)
        started = time.perf_counter()
        teacher = train_candidate(t_spec, xt, data_s.y_train, prepare(data_s.x_val, t_spec.resolution, 1), data_s.y_val, 10,
                                  replace(recipe, seed=seed), data_s.class_weights(), augmentation=data_s.augmentation)
        teacher_probs = teacher.model.predict(xt, batch_size=256, verbose=0)
        teacher_test = acc(teacher.model.predict(prepare(data_s.x_test, t_spec.resolution, 1), verbose=0), data_s.y_test)
        print(f"seed {seed}: teacher val {teacher.float_accuracy:.4f} test {teacher_test:.4f} "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        for name, spec_dict in students.items():
            spec = ArchSpec.from_dict(spec_dict).replace(quantization="int8")
            x, xv, xs = (prepare(a, spec.resolution, data_s.channels) for a in (data_s.x_train, data_s.x_val, data_s.x_test))
            rep = x[np.random.default_rng(seed).permutation(len(x))[:100]]
            row = {"model": name, "seed": seed}
            for variant, cfg, probs in (("plain", plain, None), ("recipe", recipe, None),
                                        ("kd", replace(recipe, teacher="benchmark"), teacher_probs)):
                cfg = replace(cfg, seed=seed)
                t0 = time.perf_counter()
                trained = train_candidate(spec, x, data_s.y_train, xv, data_s.y_val, 10, cfg, data_s.class_weights(),
                                          augmentation=data_s.augmentation if cfg.augment else None, teacher_probs=probs)
                row[f"{variant}_train_s"] = time.perf_counter() - t0
                ptq = convert(trained.model, "int8", rep)
                row[f"{variant}_float_val"], row[f"{variant}_float_test"] = trained.float_accuracy, acc(trained.model.predict(xs, verbose=0), data_s.y_test)
                row[f"{variant}_ptq_val"], row[f"{variant}_ptq_test"] = acc(litert_predict(ptq, xv), data_s.y_val), acc(litert_predict(ptq, xs), data_s.y_test)
                if variant == "plain":
                    continue
                t0 = time.perf_counter()
                q = qat_finetune(trained.model, trained.data, xv, cfg, 10)
                qmodel = convert(q.model, "int8", rep)
                row[f"{variant}_qat_s"] = time.perf_counter() - t0
                row[f"{variant}_qat_val"], row[f"{variant}_qat_test"] = acc(litert_predict(qmodel, xv), data_s.y_val), acc(litert_predict(qmodel, xs), data_s.y_test)
                # what the pipeline deploys with qat: on (or auto past the threshold): the better on validation
                better = row[f"{variant}_qat_val"] > row[f"{variant}_ptq_val"]
                row[f"{variant}_deployed_test"] = row[f"{variant}_qat_test"] if better else row[f"{variant}_ptq_test"]
                row[f"{variant}_size_bytes"] = len(qmodel if better else ptq)
            rows.append(row)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), file=sys.stderr, flush=True)
    _print(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def _print(rows: list[dict]) -> None:
    import numpy as np

    def ms(values):
        values = np.array(values) * 100
        return f"{values.mean():6.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:4.2f}"

    print(f"digits, int8, test accuracy % (mean ± sd over {len({r['seed'] for r in rows})} seeds); validation chooses what is deployed")
    print(f"{'model':<12} {'plain PTQ':>14} {'float':>14} {'PTQ':>14} {'QAT':>14} {'KD float':>14} {'QAT+KD':>14} "
          f"{'deployed':>14} {'train s':>8} {'QAT s':>6}")
    for model in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == model]
        col = lambda key: ms([r[key] for r in rs])  # noqa: E731
        print(f"{model:<12} {col('plain_ptq_test'):>14} {col('recipe_float_test'):>14} {col('recipe_ptq_test'):>14} "
              f"{col('recipe_qat_test'):>14} {col('kd_float_test'):>14} {col('kd_qat_test'):>14} {col('recipe_deployed_test'):>14} "
              f"{np.mean([r['recipe_train_s'] for r in rs]):8.1f} {np.mean([r['recipe_qat_s'] for r in rs]):6.1f}")
    gap = [r["recipe_float_test"] - r["recipe_deployed_test"] for r in rows]
    kd_gain = [r["kd_deployed_test"] - r["recipe_deployed_test"] for r in rows]
    recipe_gain = [r["recipe_deployed_test"] - r["plain_ptq_test"] for r in rows]
    print(f"float - deployed (recipe, QAT on): {ms(gap)} points; recipe gain over plain PTQ: {ms(recipe_gain)} points; "
          f"KD gain (deployed, with teacher - without): {ms(kd_gain)} points  (n = {len(rows)} model-seeds)")


if __name__ == "__main__":
    sys.exit(main())
