"""`nas compare`: a search's Pareto front against the study's baselines, on the same data.

For the search's dataset: one table and one figure (accuracy against size, and against latency on
the study's device), and for every baseline point (model x conversion column) the found model that
dominates it, if any: at least as accurate, no larger, no slower, no more RAM, and strictly better in
one. On a board, latency is the board's (the converted baseline priced by the same latency model as
the search's models); a baseline whose mode the board does not run, or that does not fit the board's
flash and SRAM, is marked so. On a host device, latency is per sample on this host (LiteRT, 1 thread).

Baselines trained on another split than the study's are refused: with another seed, a baseline may
have trained on the study's test images (260 of the 359 test images of a seed-1 digits study are in
the seed-0 training split), and the comparison would flatter it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError
from ..files import atomic_write_text
from ..search import dominates, load_run_config
from ..units import KB
from ._baselines import COLUMNS, baseline_model_path, read_baselines, read_split
from ._plots import pyplot, save_png
from ._report import read_pareto

__all__ = ["compare"]


def _float(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if value != value else value


def _baseline_points(rows: list[dict], dataset: str) -> list[dict]:
    by_model: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        if row["dataset"] == dataset:
            by_model.setdefault((row["model"], row["input"]), {})[row["metric"]] = row
    points = []
    for (model, size), metrics in by_model.items():
        for column in COLUMNS:
            acc = _float(metrics.get("accuracy_pct", {}).get(column))
            size_bytes = _float(metrics.get("size_bytes", {}).get(column))
            if acc is None or size_bytes is None:
                continue
            points.append({"model": model, "input": size, "column": column, "accuracy_pct": acc, "size_bytes": size_bytes,
                           "latency_ms": _float(metrics.get("latency_ms", {}).get(column)),
                           "peak_ram_bytes": _float(metrics.get("peak_ram_bytes", {}).get(column))})
    return points


def _check_split(config, run_dir: Path, baselines_dir: Path) -> None:
    """ConfigError, naming what differs, unless the baselines in `baselines_dir` were trained and tested
    on the split of the study in `run_dir`.

    The study's data (its dataset, data folder and seed) is read at the stored image size the baselines
    read, so a MedMNIST study read at 64 px and baselines read at 28 px, split alike, are the same split."""
    from ..data import DataSplit, load_dataset

    theirs = read_split(baselines_dir)
    try:
        data = load_dataset(config.dataset, config.data_dir, seed=config.seed, image_size=theirs.image_size)
    except DataError as exc:
        raise DataError(f"cannot check which split the baselines in {baselines_dir} used against the study's: "
                        f"{exc}") from None
    ours = DataSplit.of(data, config.seed)
    difference = theirs.differences(ours)
    if difference:
        data_dir = f" --data-dir {config.data_dir}" if config.data_dir else ""
        raise ConfigError(f"the baselines in {baselines_dir} were trained on split {theirs.describe()}, the study in "
                          f"{run_dir} on split {ours.describe()} ({difference}): a baseline may have trained on the "
                          f"study's test images; rerun `nas baselines --dataset {config.dataset} --seed {config.seed}"
                          f"{data_dir} ...` for this study")


def _dominates(found: dict, point: dict) -> bool:
    """Pareto dominance on accuracy and size, and on latency and RAM where both are known."""
    objectives = ["accuracy", "size_bytes"]
    for key in ("latency_ms", "peak_ram_bytes"):
        if point[key] is not None and found[key] is not None:
            objectives.append(key)
    row = lambda r: {"accuracy": r["accuracy_pct"], "size_bytes": r["size_bytes"], "latency_ms": r["latency_ms"],  # noqa: E731
                     "peak_ram_bytes": r["peak_ram_bytes"]}
    return dominates(row(found), row(point), objectives)


def _on_board(points: list[dict], device, baselines_dir: Path, dataset: str) -> None:
    """Price each baseline on the study's board; mark those it cannot run or hold (after the
    application's reserve, as budgets and `runs_on` count memory)."""
    from ..latency import board_budget_kb

    for point in points:
        point["host_latency_ms"], point["latency_ms"], point["on_board"] = point["latency_ms"], None, ""
        path = baseline_model_path(baselines_dir, dataset, point["model"], point["column"])
        if point["column"] == "tensorflow":
            point["on_board"] = "a Keras file: not deployable"
            continue
        if not path.is_file():
            point["on_board"] = "not priced: no model file (re-run `nas baselines` to keep them)"
            continue
        prediction = device.predict(path.read_bytes())
        if not prediction.runs:
            point["on_board"] = f"does not run: {prediction.reason}"
            continue
        point["latency_ms"] = prediction.latency_ms
        flash, sram = board_budget_kb(device.flash_kb), board_budget_kb(device.sram_kb)
        if flash is None or sram is None:
            point["on_board"] = "runs; memory of this part not known"
            continue
        over = []
        if point["size_bytes"] > flash * KB:
            over.append(f"{point['size_bytes'] / KB:,.0f} KB > {flash:g} KB of flash left to it")
        if point["peak_ram_bytes"] and point["peak_ram_bytes"] > sram * KB:
            over.append(f"arena {point['peak_ram_bytes'] / KB:,.0f} KB > {sram:g} KB of SRAM left to it")
        point["on_board"] = "does not fit: " + ", ".join(over) if over else "fits"


def compare(run_dir: Path, baselines_dir: Path, out: Path | None = None) -> dict:
    run_dir, baselines_dir = Path(run_dir), Path(baselines_dir)
    config = load_run_config(run_dir)
    pareto_path = run_dir / "pareto.csv"
    if not pareto_path.is_file():
        raise ConfigError(f"{run_dir} holds no pareto.csv: is it a finished search?")
    from ..latency import load_device

    device = load_device(config.device)
    board = device.latency_source == "model" and device.unit == "ms"
    table = read_pareto(pareto_path)  # in the search's own order: the selection rule's (validation)
    found = [{"trial": int(r["trial"]), "accuracy_pct": 100 * float(r["test_accuracy"]), "size_bytes": float(r["size_bytes"]),
              "latency_ms": _float(r.get("latency_ms") if board else r.get("host_latency_ms")),
              "peak_ram_bytes": _float(r["peak_ram_bytes"]), "quantization": r["quantization"]}
             for r in table.to_dict("records")]
    rows = read_baselines(baselines_dir)
    _check_split(config, run_dir, baselines_dir)
    points = _baseline_points(rows, config.dataset)
    if not points:
        raise ConfigError(f"{baselines_dir}/baselines.csv has no measured baseline for dataset {config.dataset!r}")
    if board:
        _on_board(points, device, baselines_dir, config.dataset)
    for point in points:
        deployable = not board or point["on_board"] == "fits"
        winners = [f for f in found if _dominates(f, point)] if deployable else []
        point["dominated_by"] = max(winners, key=lambda f: f["accuracy_pct"])["trial"] if winners else None
    out = Path(out) if out else run_dir / "compare"
    from ..latency import calibration_score

    where = (f"latency in milliseconds on `{device.name}` ({device.description}), predicted by its latency model "
             f"({calibration_score(device)})" if board else "latency per sample on this host (LiteRT, 1 thread)")
    lines = [f"# {config.dataset}: the search's Pareto front against the study's baselines", "",
             f"Accuracy on the test split; size of the .tflite (the Keras file for `tensorflow`); {where}; peak RAM is the "
             "TFLite Micro arena. A baseline is dominated by a found model at least as accurate, no larger, no "
             "slower, using no more RAM, and better in one." + (" Only baselines that run on and fit the board can be "
             "dominated; the others are marked." if board else ""), "", "## Found (Pareto set, retrained)", "",
             f"| trial | accuracy % | size KB | latency ms{' (predicted)' if board else ''} | peak RAM KB | mode |",
             "|---|---|---|---|---|---|"]
    for f in found:  # in `nas pareto`'s order: the selection rule's, on validation
        lines.append(f"| {f['trial']} | {f['accuracy_pct']:.2f} | {f['size_bytes'] / 1024:.1f} | {_fmt(f['latency_ms'], 3)} | "
                     f"{_fmt(f['peak_ram_bytes'] and f['peak_ram_bytes'] / 1024, 1)} | {f['quantization']} |")
    lines += ["", "## Baselines", "", "| model | input | column | accuracy % | size KB | latency ms | peak RAM KB | "
              + ("on the board | " if board else "") + "dominated by |", "|---|---|---|---|---|---|---|" + ("---|" if board else "") + "---|"]
    for p in points:
        winner = f"trial {p['dominated_by']}" if p["dominated_by"] is not None else "not dominated"
        lines.append(f"| {p['model']} | {p['input']} | {p['column']} | {p['accuracy_pct']:.2f} | {p['size_bytes'] / 1024:,.1f} | "
                     f"{_fmt(p['latency_ms'], 3)} | {_fmt(p['peak_ram_bytes'] and p['peak_ram_bytes'] / 1024, 1)} | "
                     + (f"{p['on_board']} | " if board else "") + f"{winner} |")
    dominated = sum(p["dominated_by"] is not None for p in points)
    lines += ["", f"{dominated} of {len(points)} baseline points are dominated by a found model."]
    if board:
        fit = sum(p["on_board"] == "fits" for p in points)
        lines[-1] += f" {fit} of {len(points)} run on `{device.name}` and fit its memory."
    atomic_write_text(out / f"compare-{config.dataset}.md", "\n".join(lines) + "\n")
    figure = _plot(found, points, out / f"compare-{config.dataset}.png", config.dataset,
                   f"latency (ms on {device.name}, predicted, log)" if board else "latency (ms, measured on this host, log)")
    return {"dataset": config.dataset, "device": device.name, "table": str(out / f"compare-{config.dataset}.md"), "figure": figure,
            "dominated": dominated, "baselines": len(points), "points": points, "found": found}


def _fmt(value, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _plot(found: list[dict], points: list[dict], path: Path, dataset: str, latency_label: str) -> str | None:
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "size_bytes", "size (KB, log)"), (axes[1], "latency_ms", latency_label)):
        f = sorted((x for x in found if x[key]), key=lambda x: x[key])
        ax.plot([x[key] / (1024 if key == "size_bytes" else 1) for x in f], [x["accuracy_pct"] for x in f], "o",
                color="tab:blue", label="found (Pareto)")
        for model, marker in (("custom", "s"), ("vgg16", "^"), ("mobilenet", "D")):
            b = [p for p in points if p["model"] == model and p[key]]
            if b:
                ax.scatter([p[key] / (1024 if key == "size_bytes" else 1) for p in b], [p["accuracy_pct"] for p in b],
                           marker=marker, color="tab:red", alpha=0.7, label=f"{model} (8 columns)")
        ax.set_xscale("log")
        ax.set_xlabel(label, fontsize=8 if len(label) > 40 else None)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{dataset}: search vs the study's baselines")
    fig.tight_layout()
    save_png(fig, path)
    return str(path)
