"""A search's outputs for people: trials.csv, pareto.csv, report.md with a Pareto plot, from the
search's records (`nas.search.SearchSummary`). Every file is written to a temporary name and
renamed, so no half-written output is ever left."""

from __future__ import annotations

import platform
from pathlib import Path

from ..files import atomic_write_text
from ..search import SELECTION_RULE, SearchSummary, StudyConfig
from ..units import KB
from ._plots import pyplot, save_png

__all__ = ["write_outputs", "read_pareto", "latency_provenance", "PARETO_COLUMNS", "TRIAL_COLUMNS", "TRIAL_RENAMES",
           "PARETO_RENAMES"]

#: A column's name says what it is, the same in every file: which training (proxy, or the final
#: one), which split, which model (the deployed converted one unless float_ / ptq_ / qat_ says).
#: The records' own keys, renamed on the way out:
TRIAL_RENAMES = {"accuracy": "proxy_val_accuracy", "float_accuracy": "proxy_float_val_accuracy"}
PARETO_RENAMES = {"accuracy": "test_accuracy", "float_accuracy": "float_test_accuracy", "ptq_accuracy": "ptq_test_accuracy",
                  "proxy_accuracy": "proxy_val_accuracy"}
_LATENCY = ["latency_ms", "latency_source", "latency_error_pct", "latency_error_max_pct", "energy_uj"]
TRIAL_COLUMNS = ["trial", "state", "screened", "screen_stage", "failed_stage", "reason", "proxy_val_accuracy",
                 "proxy_float_val_accuracy", "size_bytes", "peak_ram_bytes", "peak_ram_source", *_LATENCY, "host_latency_ms",
                 "tflm_compatible", "params", "macs", "quantization", "sparsity", "weight_sparsity", "feasible", "proposed_by",
                 "halved_at", "spec_hash", "spec"]
PARETO_COLUMNS = ["trial", "val_accuracy", "test_accuracy", "float_val_accuracy", "float_test_accuracy", "ptq_val_accuracy",
                  "ptq_test_accuracy", "qat_val_accuracy", "qat", "distilled_from", "augmentation", "schedule", "epochs_run",
                  "proxy_val_accuracy", "val_samples", "eval_samples", "size_bytes", "peak_ram_bytes", "peak_ram_source",
                  *_LATENCY, "host_latency_ms", "tflm_compatible", "quantization", "sparsity",
                  "params", "macs", "split", "model", "spec_hash", "spec"]


def _latency_source(name: str) -> str:
    """Where the report's latency figures come from, with the error of the model that gives them."""
    from ..latency import calibration_score, load_device

    device = load_device(name)
    if device.latency_source == "host_measurement":
        return f"Latency: measured on this host ({device.description})."
    return (f"Latency (and energy, where the board published it) in `{device.name}`'s milliseconds: {device.description}; "
            f"predicted by its latency model, {calibration_score(device)}.")


def latency_provenance(name: str) -> tuple[str, float | None, float | None]:
    """Where a search's latency figures come from, and for a predicted one the error (mean, max, %)
    its latency model states for a model no board has run, which every candidate is."""
    from ..latency import candidate_error, load_device

    device = load_device(name)
    if device.latency_source == "host_measurement":
        return "measured: this host, LiteRT 1 thread (median)", None, None
    artifact = device.artifact or {}
    if artifact.get("kind") == "board-catalog" and device.name in artifact.get("profiles", {}):
        mean, largest = candidate_error(artifact, artifact["profiles"][device.name])
        return f"predicted: {device.name} latency model", round(mean, 1), round(largest, 1)
    loo = artifact.get("validation", {}).get("leave_one_out", {})
    return (f"predicted: {device.name} latency model", loo.get("mean_abs_error_pct"), loo.get("max_abs_error_pct"))


def _csv(path: Path, rows: list[dict], columns: list[str], renames: dict[str, str], latency) -> None:
    import pandas as pd

    source, mean, largest = latency
    out = []
    for row in rows:
        row = {renames.get(k, k): v for k, v in row.items()}
        if row.get("latency_ms") is not None:
            row.update(latency_source=source, latency_error_pct=mean, latency_error_max_pct=largest)
        out.append(row)
    atomic_write_text(path, pd.DataFrame(out, columns=columns).to_csv(index=False))


def read_pareto(path: Path):
    """A search's pareto.csv as a DataFrame, in its order (the selection rule's), with today's column
    names (an older run's `accuracy` is `test_accuracy`)."""
    import pandas as pd

    table = pd.read_csv(path)
    return table.rename(columns={k: v for k, v in PARETO_RENAMES.items() if v not in table})


def write_outputs(summary: SearchSummary, config: StudyConfig) -> dict[str, Path]:
    """trials.csv, pareto.csv, report.md and pareto.png in the search's output folder."""
    out_dir = Path(summary.out_dir)
    trials, pareto = list(summary.trials), list(summary.pareto)
    latency = latency_provenance(config.device)
    _csv(out_dir / "trials.csv", trials, TRIAL_COLUMNS, TRIAL_RENAMES, latency)
    _csv(out_dir / "pareto.csv", pareto, PARETO_COLUMNS, PARETO_RENAMES, latency)
    plot = _plot(out_dir / "pareto.png", trials, pareto, config, latency)
    atomic_write_text(out_dir / "report.md", _markdown(config, summary, plot))
    return {"trials": out_dir / "trials.csv", "pareto": out_dir / "pareto.csv", "report": out_dir / "report.md"}


def _plot(path: Path, trials: list[dict], pareto: list[dict], config: StudyConfig, latency: tuple) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    trained = [t for t in trials if t["state"] == "complete" and not t["screened"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    source, mean, largest = latency  # `latency_provenance`, as the CSVs state it
    latency_label = ("latency (ms, measured on this host)" if source.startswith("measured")
                     else f"latency (ms on {config.device}, predicted" + (f": error mean {mean:.0f}%, max {largest:.0f}%)"
                                                                          if mean is not None and largest is not None else ")"))
    for ax, key, label, limit, scale in (
        (axes[0], "latency_ms", latency_label, config.budgets.max_latency_ms, 1.0),
        (axes[1], "size_bytes", "model size (KB)", config.budgets.max_size_kb, 1.0 / KB),
    ):
        for feasible, style in ((False, dict(color="0.7", marker="x", label="proxy trials over budget")),
                                (True, dict(color="tab:blue", marker="o", alpha=0.6, label="proxy trials within budget"))):
            pts = [t for t in trained if t["feasible"] == feasible and t.get(key) is not None]
            ax.scatter([t[key] * scale for t in pts], [t["accuracy"] for t in pts], s=18, **style)
        front = [r for r in pareto if r.get(key) is not None]
        if front:
            # four objectives: the set is not a monotone curve in any 2-D view, so no connecting line
            ax.scatter([r[key] * scale for r in front], [r["val_accuracy"] for r in front], marker="*", s=160,
                       color="tab:red", zorder=3, label="Pareto set (final training, validation split)")
        if limit is not None:
            ax.axvline(limit, color="tab:orange", linestyle="--", label="budget")
        ax.set_xlabel(label, fontsize=8 if len(label) > 40 else None)
        ax.set_ylabel("validation accuracy of the converted model")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{config.name}: {config.dataset} on {config.device}")
    fig.tight_layout()
    save_png(fig, path)
    return path


def _fmt(value, kind: str = "") -> str:
    if value is None or value != value:
        return "—"
    if kind == "kb":
        return f"{value / KB:.1f}"
    if kind == "pct":
        return f"{100 * value:.2f}"
    if kind == "ms":
        return f"{value:.3f}"
    return str(value)


def _training_lines(config: StudyConfig, pareto) -> list[str]:
    """How the final models were trained, and what QAT did per model, in words."""
    f = config.final
    lines = [f"Final training: {f.epochs} epochs at most (early stopping, patience {f.patience}), schedule {f.schedule}"
             + (f" with {f.warmup_epochs:g} warm-up epoch(s)" if f.warmup_epochs else "")
             + f", label smoothing {f.label_smoothing:g}, augmentation {'on' if f.augment else 'off'}, QAT {f.qat}"
             + (f" (threshold {f.qat_threshold:g} points, {f.qat_epochs} epochs)" if f.qat != "off" else "")
             + (f", distilled from {f.teacher} (T={f.kd_temperature:g}, label weight {f.kd_weight:g})" if f.distilled else ", no teacher")
             + ".", ""]
    for r in pareto:
        notes = [r.get("qat_note") or ""]
        if r.get("qat_unannotated"):
            notes.append(f"layers tfmot did not annotate: {', '.join(r['qat_unannotated'])}")
        if r.get("distilled_from"):
            notes.append(f"distilled from {r['distilled_from']}")
        notes = [n for n in notes if n]
        if notes:
            lines.append(f"- trial {r['trial']}: " + "; ".join(notes))
    return lines + [""]


def _strategy_lines(config: StudyConfig, trials) -> list[str]:
    """Who proposed the trials (warm start, start-up design, surrogate) and what successive halving stopped."""
    from collections import Counter

    warm = [t for t in trials if str(t.get("proposed_by", "")).startswith("warm start")]
    kinds = Counter(str(t.get("proposed_by", "")).split(" (")[0] for t in trials if t.get("proposed_by")
                    and not str(t.get("proposed_by")).startswith("warm start"))
    halved = [t for t in trials if t.get("halved_at")]
    lines = []
    if warm:
        lines += ["Warm start: these trials came first, from an earlier study of the same space and device:", ""]
        lines += [f"- trial {t['trial']}: {t['proposed_by']}" for t in warm] + [""]
    if kinds:
        lines += ["Proposed by: " + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()) + "."]
    if config.halving_on:
        lines += [f"Successive halving across proxy epochs stopped {len(halved)} trial(s) early"
                  + (": " + ", ".join(f"trial {t['trial']} after epoch {t['halved_at']}" for t in halved) if halved else "")
                  + " (a trial stops at a rung when it is costlier and clearly less accurate than enough earlier trials there)."]
    return lines + ([""] if lines else [])


def _markdown(config: StudyConfig, summary: SearchSummary, plot: Path | None) -> str:
    from collections import Counter

    from ..latency import load_device

    trials, finals, pareto = summary.trials, summary.finals, summary.pareto
    b = config.budgets
    data = summary.dataset
    trained = [t for t in trials if t["state"] == "complete" and not t["screened"]]
    failed = [t for t in trials if t["state"] == "fail"]
    screened = [t for t in trials if t["screened"]]
    duplicates = sum(t["state"] == "duplicate" for t in trials)
    lines = [
        f"# Search report: {config.name}",
        "",
        f"Dataset `{config.dataset}`, space `{config.space}`, device `{config.device}`, sampler `{config.sampler}`, seed {config.seed}.",
        f"Budgets: size ≤ {_fmt(b.max_size_kb)} KB, peak RAM ≤ {_fmt(b.max_ram_kb)} KB, latency ≤ {_fmt(b.max_latency_ms)} ms"
        + (f", energy ≤ {_fmt(b.max_energy_uj)} uJ" if b.max_energy_uj else "")
        + " (KB = 1024 bytes). Objectives: " + ", ".join(config.objectives) + ".",
        _latency_source(config.device),
    ]
    if data:
        lines.append(f"Data read from `{data.get('source')}`: {data.get('train')} training, {data.get('val')} validation and "
                     f"{data.get('test')} test samples, {data.get('image_size')} px." + "".join(f" {n.capitalize()}." for n in data.get("notes", [])))
    lines += [""] + [f"- {note}" for note in summary.notes] + ([""] if summary.notes else []) + [
        f"- trained (proxy: {config.proxy.epochs} epochs, validation split): {len(trained)}, "
        f"of which within budget: {sum(t['feasible'] for t in trained)}",
        f"- rejected before training (budget or device screening): {len(screened)}",
        f"- failed: {len(failed)}",
        *([f"- asked again and not trained (the spec of an earlier trial): {duplicates}"] if duplicates else []),
        *([f"- stopped asking before {config.trials} trained trials: {summary.stopped}"] if summary.stopped else []),
        f"- retrained with final settings ({config.final.epochs} epochs), measured on validation and test: {len(finals)}",
        "",
    ]
    lines += _strategy_lines(config, trials)
    if failed:
        lines += ["Failures by reason:", ""]
        for reason, n in Counter(f"{t['failed_stage']}: {t['reason']}" for t in failed).most_common():
            lines.append(f"- {n} × {reason}")
        lines.append("")
    if screened:
        lines += ["Rejections before training by stage:", ""]
        for stage, n in Counter(t["screen_stage"] for t in screened).most_common():
            lines.append(f"- {n} × {stage}")
        lines.append("")
    lines += ["## Pareto set (final training, converted models)", "", f"The set and its order are {SELECTION_RULE}.", ""]
    val_n = data.get("val") if data else None
    if val_n:
        lines += [f"Validation has {val_n} samples, so one sample is {100 / val_n:.2f} points of validation accuracy"
                  + (": differences of a few samples between models are noise." if val_n < 1000 else ".") , ""]
    if pareto:
        lines += ["Accuracy in % as validation / test: the deployed (converted) model, the float Keras model, the "
                  "post-training-quantized model; QAT says whether quantization-aware training was used (see pareto.csv).", "",
                  "| trial | deployed val / test % | float val / test % | PTQ val / test % | QAT | size KB | peak RAM KB | RAM source | "
                  "latency ms | mode | sparsity |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in pareto:
            lines.append(f"| {r['trial']} | {_fmt(r.get('val_accuracy'), 'pct')} / {_fmt(r['accuracy'], 'pct')} | "
                         f"{_fmt(r.get('float_val_accuracy'), 'pct')} / {_fmt(r['float_accuracy'], 'pct')} | "
                         f"{_fmt(r.get('ptq_val_accuracy'), 'pct')} / {_fmt(r.get('ptq_accuracy'), 'pct')} | {r.get('qat') or '—'} | "
                         f"{_fmt(r['size_bytes'], 'kb')} | {_fmt(r['peak_ram_bytes'], 'kb')} | "
                         f"{r['peak_ram_source']} | {_fmt(r['latency_ms'], 'ms')} | {r['quantization']} | {r['sparsity']} |")
        lines += [""] + _training_lines(config, pareto)
    else:
        lines.append("No retrained candidate meets every budget yet.")
    lines.append("")
    if plot is not None:
        lines += [f"![Pareto plot]({plot.name})", ""]
    else:
        lines += ["(Install the plots extra, `pip install 'tinyml-nas[plots]'`, for the Pareto plot.)", ""]
    device = load_device(config.device)
    where = ("measured on this host (LiteRT, 1 thread, median), not a microcontroller figure"
             if device.latency_source == "host_measurement" else f"{device.name}'s ms, predicted: {device.calibration}")
    lines += [f"Latency is {where}. Python {platform.python_version()} on {platform.machine()}.", ""]
    return "\n".join(lines)
