"""A search's outputs for people: trials.csv, pareto.csv, report.md with a Pareto plot, from the
search's records (`nas.search.SearchSummary`). Every file is written to a temporary name and
renamed, so no half-written output is ever left."""

from __future__ import annotations

import platform
from pathlib import Path

from ..files import atomic_write_text
from ..search import SearchSummary, StudyConfig
from ..units import KB
from ._plots import pyplot, save_png

__all__ = ["write_outputs", "PARETO_COLUMNS", "TRIAL_COLUMNS"]

TRIAL_COLUMNS = ["trial", "state", "screened", "screen_stage", "failed_stage", "reason", "accuracy", "float_accuracy",
                 "size_bytes", "peak_ram_bytes", "peak_ram_source", "latency_ms", "host_latency_ms", "tflm_compatible",
                 "params", "macs", "quantization", "sparsity", "weight_sparsity", "feasible", "spec_hash", "spec"]
PARETO_COLUMNS = ["trial", "accuracy", "float_accuracy", "proxy_accuracy", "size_bytes", "peak_ram_bytes",
                  "peak_ram_source", "latency_ms", "host_latency_ms", "tflm_compatible", "quantization", "sparsity",
                  "params", "macs", "split", "model", "spec_hash", "spec"]


def _csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    import pandas as pd

    atomic_write_text(path, pd.DataFrame(rows, columns=columns).to_csv(index=False))


def write_outputs(summary: SearchSummary, config: StudyConfig) -> dict[str, Path]:
    """trials.csv, pareto.csv, report.md and pareto.png in the search's output folder."""
    out_dir = Path(summary.out_dir)
    trials, finals, pareto = list(summary.trials), list(summary.finals), list(summary.pareto)
    _csv(out_dir / "trials.csv", trials, TRIAL_COLUMNS)
    _csv(out_dir / "pareto.csv", pareto, PARETO_COLUMNS)
    plot = _plot(out_dir / "pareto.png", trials, pareto, config)
    atomic_write_text(out_dir / "report.md", _markdown(config, trials, finals, pareto, plot))
    return {"trials": out_dir / "trials.csv", "pareto": out_dir / "pareto.csv", "report": out_dir / "report.md"}


def _plot(path: Path, trials: list[dict], pareto: list[dict], config: StudyConfig) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    trained = [t for t in trials if t["state"] == "complete" and not t["screened"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label, limit, scale in (
        (axes[0], "latency_ms", "latency (ms)", config.budgets.max_latency_ms, 1.0),
        (axes[1], "size_bytes", "model size (KB)", config.budgets.max_size_kb, 1.0 / KB),
    ):
        for feasible, style in ((False, dict(color="0.7", marker="x", label="proxy trials over budget")),
                                (True, dict(color="tab:blue", marker="o", alpha=0.6, label="proxy trials within budget"))):
            pts = [t for t in trained if t["feasible"] == feasible]
            ax.scatter([t[key] * scale for t in pts], [t["accuracy"] for t in pts], s=18, **style)
        if pareto:
            # four objectives: the set is not a monotone curve in any 2-D view, so no connecting line
            ax.scatter([r[key] * scale for r in pareto], [r["accuracy"] for r in pareto], marker="*", s=160,
                       color="tab:red", zorder=3, label="Pareto set (final training, test split)")
        if limit is not None:
            ax.axvline(limit, color="tab:orange", linestyle="--", label="budget")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy of the converted model")
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


def _markdown(config: StudyConfig, trials: list[dict], finals: list[dict], pareto: list[dict], plot: Path | None) -> str:
    from collections import Counter

    b = config.budgets
    trained = [t for t in trials if t["state"] == "complete" and not t["screened"]]
    failed = [t for t in trials if t["state"] == "fail"]
    screened = [t for t in trials if t["screened"]]
    lines = [
        f"# Search report: {config.name}",
        "",
        f"Dataset `{config.dataset}`, space `{config.space}`, device `{config.device}`, sampler `{config.sampler}`, seed {config.seed}.",
        f"Budgets: size ≤ {_fmt(b.max_size_kb)} KB, peak RAM ≤ {_fmt(b.max_ram_kb)} KB, latency ≤ {_fmt(b.max_latency_ms)} ms "
        "(KB = 1024 bytes). Objectives: " + ", ".join(config.objectives) + ".",
        "",
        f"- trained (proxy: {config.proxy.epochs} epochs, validation split): {len(trained)}, "
        f"of which within budget: {sum(t['feasible'] for t in trained)}",
        f"- rejected before training (budget or device screening): {len(screened)}",
        f"- failed: {len(failed)}",
        f"- retrained with final settings ({config.final.epochs} epochs) and measured on the test split: {len(finals)}",
        "",
    ]
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
    lines += ["## Pareto set (test split, converted models)", ""]
    if pareto:
        lines += ["| trial | accuracy % | float % | size KB | peak RAM KB | RAM source | latency ms | mode | sparsity |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in pareto:
            lines.append(f"| {r['trial']} | {_fmt(r['accuracy'], 'pct')} | {_fmt(r['float_accuracy'], 'pct')} | "
                         f"{_fmt(r['size_bytes'], 'kb')} | {_fmt(r['peak_ram_bytes'], 'kb')} | {r['peak_ram_source']} | "
                         f"{_fmt(r['latency_ms'], 'ms')} | {r['quantization']} | {r['sparsity']} |")
    else:
        lines.append("No retrained candidate meets every budget yet.")
    lines.append("")
    if plot is not None:
        lines += [f"![Pareto plot]({plot.name})", ""]
    else:
        lines += ["(Install the plots extra, `pip install 'tinyml-nas[plots]'`, for the Pareto plot.)", ""]
    lines += ["Latency is the host LiteRT measurement (1 thread, median) unless the device profile says otherwise; "
              f"Python {platform.python_version()} on {platform.machine()}.", ""]
    return "\n".join(lines)
