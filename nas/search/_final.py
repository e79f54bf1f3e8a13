"""Multi-fidelity, second rung: the proxy Pareto set is retrained with the study's `final`
settings, and each converted final model is measured on the validation split and, once, on the
test split. Results are cached per trial in `<out>/final/`, keyed by the final settings, so a
resumed search retrains only what is missing.

The final Pareto set is the search's answer, and it is chosen on validation: dominance and rank
use the converted model's validation accuracy (ties: smaller size). The test split is measured
once per final model and reported; it never chooses, stops or tunes anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import ConfigError
from ..files import atomic_write_bytes, atomic_write_text
from ..latency import load_device
from ..spec import ArchSpec
from ._pareto import non_dominated
from ._record import metrics_of, trained_rows
from ._study import StudyConfig
from ._teacher import attach_teacher

__all__ = ["proxy_pareto", "retrain_pareto", "load_finals", "final_pareto", "SELECTION_RULE", "FINAL_RECORD"]

#: The format of a cached final result; results of another format are retrained.
FINAL_RECORD = 3  # 3: float / PTQ / QAT accuracies and the training record (issue 13)
SELECTION_RULE = ("chosen on the validation split: the final models within budget that no other dominates on "
                  "validation accuracy and the cheap objectives, ranked by validation accuracy (ties: smaller size); "
                  "test accuracy is measured once per final model and reported, never used to choose")


def proxy_pareto(study, config: StudyConfig) -> list[dict]:
    """Feasible trained trials that no other dominates, most accurate first, each architecture once
    (a study of an earlier version may have trained one twice), at most final_top_k."""
    feasible = [r for r in trained_rows(study) if config.budgets.admits(r)]
    front = sorted(non_dominated(feasible, config.objectives), key=lambda r: (-r["accuracy"], r["trial"]))
    return _once_each(front)[: config.final_top_k]


def _once_each(rows: list[dict]) -> list[dict]:
    """`rows` with each spec hash's first row only (rows without one kept)."""
    seen: set = set()
    out = []
    for r in rows:
        key = r.get("spec_hash")
        if key is None or key not in seen:
            out.append(r)
            seen.add(key)
    return out


def retrain_pareto(study, config: StudyConfig, out_dir: Path, *, executor, progress: bool = True, dataset=None) -> list[dict]:
    """Retrain the proxy Pareto members that have no cached final result; all finals back. With a
    teacher (`final.teacher`), `dataset` is the study's data, to which the teacher's outputs are attached."""
    device = load_device(config.device)
    final_dir = Path(out_dir) / "final"
    final_dir.mkdir(exist_ok=True)
    settings = config.final.to_dict()
    todo = []
    for proxy in proxy_pareto(study, config):
        path = final_dir / f"trial-{proxy['trial']:05d}.json"
        cached = json.loads(path.read_text()) if path.is_file() else None
        if cached is None or cached.get("final_settings") != settings or cached.get("record") != FINAL_RECORD:
            todo.append(proxy)
    if todo and progress:
        print(f"final training of {len(todo)} Pareto candidate(s): {config.final.epochs} epochs, "
              "chosen on validation, test measured once", file=sys.stderr, flush=True)
    taught = None
    if todo and config.final.distilled:
        if dataset is None:
            raise ConfigError("final.teacher is set but retrain_pareto was given no dataset to distil on")
        taught = attach_teacher(dataset, config, study, out_dir)
    specs = [ArchSpec.from_json(p["spec"]) for p in todo]
    results = executor.evaluate_final(specs, config.final, taught) if taught is not None else executor.evaluate_final(specs, config.final)
    for proxy, result in zip(todo, results):
        spec = result.spec
        row = {"trial": proxy["trial"], "final_settings": settings, "record": FINAL_RECORD, "status": result.status,
               "failed_stage": result.failed_stage, "reason": result.reason, "spec": proxy["spec"],
               "spec_hash": spec.hash, "quantization": spec.quantization, "sparsity": spec.sparsity,
               "proxy_accuracy": proxy["accuracy"], "split": "test"}
        if result.status == "ok":
            model_name = f"trial-{proxy['trial']:05d}.tflite"
            atomic_write_bytes(final_dir / model_name, result.tflite)
            row.update(metrics_of(result, device), model=model_name)
        atomic_write_text(final_dir / f"trial-{proxy['trial']:05d}.json", json.dumps(row, indent=2, sort_keys=True))
    return load_finals(out_dir, settings)


def load_finals(out_dir: Path, settings: dict | None = None) -> list[dict]:
    """Every cached final result (of earlier Pareto members too), for the given final settings."""
    rows = [json.loads(p.read_text()) for p in sorted((Path(out_dir) / "final").glob("trial-*.json"))]
    return [r for r in rows if settings is None or r.get("final_settings") == settings]


def final_pareto(finals: list[dict], config: StudyConfig) -> list[dict]:
    """The answer: final models within budget that no other dominates, judged on validation
    accuracy (and the cheap objectives), highest validation accuracy first, ties to the smaller.
    Test accuracy plays no part."""
    ok = [f for f in finals if f.get("status") == "ok" and f.get("val_accuracy") is not None and config.budgets.admits(f)]
    on_validation = [{**f, "accuracy": f["val_accuracy"]} for f in ok]
    front = {r["trial"] for r in non_dominated(on_validation, config.objectives)}
    return _once_each(sorted((f for f in ok if f["trial"] in front),
                             key=lambda r: (-r["val_accuracy"], r["size_bytes"], r["trial"])))
