"""The trial record: what a trial stores in the study (`user_attrs`), the objective values and
constraints it is told with, and the rows read back from it. The study storage alone is enough
to resume a search, report it and export from it."""

from __future__ import annotations

import json
from typing import Any

from ..units import KB
from ._study import StudyConfig

__all__ = ["PENALTY", "DUPLICATE", "metrics_of", "record", "objective_values", "constrain", "count_trials", "trained_rows",
           "trial_rows", "interrupted", "failed_candidate", "asked_specs", "trial_key"]

PENALTY = 1e12  # objective value of a minimised metric that was never measured
#: The `failed_stage` of an ask whose spec an earlier trial had: told failed (samplers ignore it), never trained
DUPLICATE = "duplicate"


def metrics_of(result, device) -> dict[str, Any]:
    """The stored metrics of a measured candidate (`CandidateResult`), latency as the device prices it."""
    return {
        "accuracy": result.accuracy,
        "float_accuracy": result.float_accuracy,
        "val_accuracy": result.val_accuracy,
        "float_val_accuracy": result.float_val_accuracy,
        "val_samples": result.val_samples,
        "eval_samples": result.eval_samples,
        "size_bytes": result.size_bytes,
        "peak_ram_bytes": result.peak_ram_bytes,
        "peak_ram_source": result.peak_ram_source,
        "latency_ms": device.latency_ms(result),
        "energy_uj": device.energy_uj(result),
        "host_latency_ms": result.host_latency_ms,
        "tflm_compatible": result.tflm_compatible,
        "tflm_reason": result.tflm_reason,
        "params": result.params,
        "macs": result.macs,
        "weight_sparsity": result.weight_sparsity,
        "epochs_run": result.epochs_run,
        "learning_curve": list(result.learning_curve),
        "halved_at": result.halved_at,
        "ptq_accuracy": result.ptq_accuracy,
        "ptq_val_accuracy": result.ptq_val_accuracy,
        "qat_val_accuracy": result.qat_val_accuracy,
        "qat": result.qat,
        "qat_note": result.qat_note,
        "qat_unannotated": list(result.qat_unannotated),
        "distilled_from": result.distilled_from,
        "augmentation": result.augmentation,
        "schedule": result.schedule,
        "timings_s": json.dumps(result.timings_s),
    }


def record(trial, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def objective_values(config: StudyConfig, metrics: dict[str, Any]) -> list[float]:
    out = []
    for name in config.objectives:
        value = metrics.get(name)
        out.append(float(value) if value is not None else (0.0 if name == "accuracy" else PENALTY))
    return out


def constrain(trial, config: StudyConfig, metrics: dict[str, Any], *, runs: bool = True, rejected: bool = False) -> None:
    """Budgets as hard constraints, so samplers rank every feasible trial above every infeasible
    one: each budget's relative overshoot (an unmeasured budgeted figure counts as 100% over), and
    `runs`, 1 for a spec the device cannot run or use. A spec rejected before training is never
    feasible to the sampler, whatever the budgets say."""
    values = config.budgets.violations(metrics.get("size_bytes"), metrics.get("peak_ram_bytes"), metrics.get("latency_ms"),
                                       metrics.get("energy_uj"))
    values["runs"] = 0.0 if runs else 1.0
    if rejected and max(values.values()) <= 0:
        values["runs"] = 1.0
    for key, value in values.items():
        trial.set_constraint(key, value)
    trial.set_user_attr("violations", {k: round(v, 4) for k, v in values.items()})  # readable where constraints are not
    trial.set_user_attr("over_budget", _over_budget(config.budgets, metrics, runs, rejected))


def _over_budget(budgets, metrics: dict[str, Any], runs: bool, rejected: bool) -> dict[str, str]:
    """Each budget's standing in its own unit ("67.1 KB of 64 KB: 3.1 KB over"), for people reading the
    record (the dashboard shows user attributes, not constraints)."""
    out = {}
    for key, limit, value, unit in (("size", budgets.max_size_kb, metrics.get("size_bytes"), "KB"),
                                    ("ram", budgets.max_ram_kb, metrics.get("peak_ram_bytes"), "KB"),
                                    ("latency", budgets.max_latency_ms, metrics.get("latency_ms"), "ms"),
                                    ("energy", budgets.max_energy_uj, metrics.get("energy_uj"), "uJ")):
        if limit is None:
            continue
        if value is None or value != value:
            out[key] = f"not measured (budget {limit:g} {unit})"
            continue
        value = value / KB if unit == "KB" else value
        out[key] = (f"{value:.4g} {unit} of {limit:g} {unit}: " + (f"{value - limit:.3g} {unit} over" if value > limit else "within"))
    if not runs:
        out["runs"] = "the device cannot run or use this spec"
    elif rejected:
        out["runs"] = "rejected before training"
    return out


def count_trials(study) -> tuple[int, int, int]:
    """(trained and complete, failed, screened) among the stored trials; interrupted ones do not count."""
    import optuna

    trained = failed = screened = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.COMPLETE:
            if t.user_attrs.get("screened"):
                screened += 1
            else:
                trained += 1
        elif failed_candidate(t):
            failed += 1
    return trained, failed, screened


def failed_candidate(trial) -> bool:
    """A failed trial that counts as the candidate's failure: not an interrupted one (its work is
    redone), nor a duplicate ask."""
    import optuna

    return (trial.state == optuna.trial.TrialState.FAIL and not interrupted(trial.user_attrs)
            and trial.user_attrs.get("failed_stage") != DUPLICATE)


def interrupted(attrs: dict) -> bool:
    """Interrupted, not failed: marked so by a search, or failed by Optuna's stale-heartbeat check
    (which records no stage; every failure of a candidate records one)."""
    return attrs.get("failed_stage") in (None, "interrupted")


def trial_key(spec_hash: str, proxy_epochs: int | None = None) -> str:
    """What makes two trials the same training: the spec, and the proxy epochs where a strategy sets
    them per trial (Hyperband trains a spec again for more epochs)."""
    return f"{spec_hash}@{proxy_epochs}" if proxy_epochs else spec_hash


def asked_specs(trials) -> dict[str, int]:
    """`trial_key` -> the first trial that holds it, over the trials whose spec was trained or sent to
    train: trained, failed, in flight. Not an interrupted trial (its work is redone), a duplicate ask,
    nor a rejection before training (screening it again costs no training, and the budgets that
    rejected it may have changed)."""
    import optuna

    out: dict[str, int] = {}
    for t in trials:
        a = t.user_attrs
        if "spec_hash" not in a or a.get("failed_stage") == DUPLICATE or a.get("screened"):
            continue
        if t.state == optuna.trial.TrialState.FAIL and interrupted(a):
            continue
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING):
            out.setdefault(trial_key(a["spec_hash"], a.get("proxy_epochs")), t.number)
    return out


def trained_rows(study) -> list[dict]:
    """The records of the complete, trained (not screened) trials, with their trial number."""
    import optuna

    rows = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if not t.user_attrs.get("screened"):
            rows.append({"trial": t.number, **t.user_attrs})
    return rows


def trial_rows(study, config: StudyConfig) -> list[dict]:
    """One row per stored trial, whatever its state: its record plus state, sparsity and feasibility."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        spec = json.loads(a["spec"]) if "spec" in a else {}
        row = dict(a)
        row.update(trial=t.number, state=t.state.name.lower(), sparsity=spec.get("sparsity"), screened=bool(a.get("screened")))
        if t.state.name == "FAIL" and a.get("failed_stage") is None:
            row.update(failed_stage="interrupted", reason="its search process stopped sending heartbeats")
        if a.get("failed_stage") == DUPLICATE:
            row["state"] = DUPLICATE  # asked again, not trained: not a candidate's failure
        row["feasible"] = bool(t.state.name == "COMPLETE" and not a.get("screened") and config.budgets.admits(a))
        rows.append(row)
    return rows
