"""Export a found model for deployment, verified in the TFLite Micro interpreter.

Writes model.tflite, model_data.h / model_data.cc (a 16-byte aligned C array, its length and
the arena size TFLite Micro needs), model_card.json and model_card.md, and where the Arm build is
at hand, firmware/ with the sources whose link the card's `firmware` entry measured (`_firmware`). Everything is written to
a temporary folder and moved into place only after the TFLite Micro check passed, so a failed
export leaves nothing behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
import shutil
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from ..errors import ConfigError, NasError
from ..search import SELECTION_RULE, StudyConfig, final_pareto, load_finals, load_run_config, load_study_dataset
from ..units import KB
from ._cfiles import c_identifier, c_source
from ._firmware import firmware_record, golden_pair

__all__ = ["export_model", "MIN_TFLM_AGREEMENT"]

MIN_TFLM_AGREEMENT = 0.99
_LIBRARIES = ("tinyml-nas", "tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert",
              "tflite-micro", "optuna", "numpy")


def _versions() -> dict[str, str]:
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _pick(out_dir: Path, config: StudyConfig, trial: int | None) -> dict:
    finals = load_finals(out_dir, config.final.to_dict())
    if trial is None:
        front = final_pareto(finals, config)
        if not front:
            raise NasError(f"no retrained model in {out_dir} meets every budget; pick one with --trial N "
                           "(see trials.csv) or relax the budget and search again")
        return {**front[0], "source": "final"}
    for row in finals:
        if row["trial"] == trial:
            if row.get("status") != "ok":
                raise NasError(f"trial {trial}'s final training failed: {row.get('reason')}")
            return {**row, "source": "final"}
    import pandas as pd

    trials_csv = out_dir / "trials.csv"
    if trials_csv.is_file():
        table = pd.read_csv(trials_csv)
        match = table[(table["trial"] == trial) & (table["state"] == "complete") & (~table["screened"].astype(bool))]
        if len(match):
            row = {k: (None if isinstance(v, float) and v != v else v) for k, v in match.iloc[0].to_dict().items()}
            row["model"] = f"trial-{trial:05d}.tflite"
            row["val_accuracy"] = row.get("proxy_val_accuracy", row.get("accuracy"))  # the proxy run's, on validation
            return {**row, "source": "proxy", "split": "val"}
    raise ConfigError(f"trial {trial} is not a trained trial of {out_dir}; see trials.csv for the trial numbers")


def _device_latency(device, model: bytes, spec, row: dict) -> dict:
    """The exported model's latency on one device, with where the figure comes from."""
    if not device.runs(spec.quantization):
        return {"latency_ms": None, "source": f"{device.runtime} does not run {spec.quantization} models"}
    if device.latency_source == "host_measurement":
        return {"latency_ms": row.get("host_latency_ms"), "source": "measured on the search host (LiteRT, 1 thread)"}
    if device.artifact is None:
        return {"latency_ms": None, "source": f"not calibrated (nas calibrate --device {device.name})"}
    prediction = device.predict(model)
    if not prediction.runs:
        return {"latency_ms": None, "source": prediction.reason}
    if device.unit != "ms":
        return {"latency_ms": None, "instructions": round(prediction.instructions), "source": "latency model (instructions)"}
    return {"latency_ms": round(prediction.latency_ms, 3), "source": f"latency model ({device.calibration.split(';')[0]})"}


def export_model(out_dir: Path, dest: Path, *, trial: int | None = None, name: str = "g_model",
                 data_dir: str | None = None, firmware_core: str | None = "board") -> dict:
    """Export the best model (or `trial`) of the search in `out_dir` into `dest`; returns the card.
    `firmware_core`: the core whose Arm build measures the firmware ("board": the study board's
    core; None: none), its sources written to `dest/firmware/` (`_firmware`)."""
    from ..data import prepare
    from ..latency import board_devices, device_names, load_device, runs_on
    from ..measure import litert_predict, tflm_arena, tflm_predict
    from ..spec import ArchSpec

    out_dir, dest = Path(out_dir), Path(dest)
    config = load_run_config(out_dir)
    row = _pick(out_dir, config, trial)
    folder = out_dir / ("final" if row["source"] == "final" else "models")
    model = (folder / row["model"]).read_bytes()
    spec = ArchSpec.from_json(row["spec"])

    device = load_device(config.device)
    dataset = load_study_dataset(replace(config, data_dir=data_dir or config.data_dir))
    x_test = prepare(dataset.x_test, spec.resolution, dataset.channels)
    lite = litert_predict(model, x_test)
    arena = tflm_arena(model)
    agreement = agreement_xnnpack = micro_accuracy = None
    if arena.compatible:
        micro = tflm_predict(model, x_test, arena.arena_bytes).argmax(1)
        reference = litert_predict(model, x_test, reference=True).argmax(1)
        agreement = float(np.mean(micro == reference))
        agreement_xnnpack = float(np.mean(micro == lite.argmax(1)))
        micro_accuracy = float(np.mean(micro == dataset.y_test))
        if agreement < MIN_TFLM_AGREEMENT:
            raise NasError(f"TFLite Micro agrees with LiteRT (reference kernels) on only {agreement:.2%} of the test split "
                           f"(at least {MIN_TFLM_AGREEMENT:.0%} needed); nothing was exported")
    elif device.runtime == "tflm":
        raise NasError(f"TFLite Micro cannot run the exported {spec.quantization} model: {arena.reason}; nothing was exported")

    boards = {d.name for d in board_devices()}
    latency_by_device = {name: _device_latency(load_device(name), model, spec, row)
                         for name in device_names() if name not in boards}
    core = (device.arm_build[0] if device.arm_build else None) if firmware_core == "board" else firmware_core
    golden = (golden_pair(model, dataset.x_test[0], _class_of(dataset, 0))
              if arena.compatible and firmware_core is not None else None)
    firmware, firmware_files = (firmware_record(model, core, device, explicit=firmware_core != "board", golden=golden,
                                                host_arena_bytes=arena.arena_bytes if arena.compatible else None,
                                                folder=dest / "firmware") if firmware_core is not None
                                else ({"measured": False, "why": "not asked for (--firmware-core none)"}, {}))
    board_rows = runs_on(model, arena.arena_bytes if arena.compatible else row.get("peak_ram_bytes"),
                         firmware if firmware["measured"] else None)
    litert_accuracy = float(np.mean(lite.argmax(1) == dataset.y_test))
    # the headline is the accuracy the device's runtime reaches: TFLite Micro's for a microcontroller runtime
    on_micro = device.runtime != "litert" and micro_accuracy is not None
    test_accuracy = micro_accuracy if on_micro else litert_accuracy
    accuracy_source = (("TFLite Micro (host interpreter, reference kernels), test split"
                        + ("" if device.runtime == "tflm" else f"; the board runs {device.runtime}, whose kernels may round "
                           "differently") if on_micro else "LiteRT (XNNPACK), test split"))
    ident = c_identifier(name)
    card = {
        "model": "model.tflite",
        "c_array": ident,
        "trial": int(row["trial"]),
        "source": "final retraining" if row["source"] == "final" else "proxy training (not retrained)",
        "selection": (f"--best: {SELECTION_RULE}" if trial is None else f"--trial {trial}, chosen by the user"),
        "dataset": config.dataset,
        "classes": list(dataset.class_names),
        "input": {"shape": [1, spec.resolution, spec.resolution, dataset.channels],
                  "normalisation": "pixels / 255 in [0, 1], through the input tensor's scale and zero point"},
        "spec": spec.to_dict(),
        "spec_hash": spec.hash,
        "quantization": spec.quantization,
        "sparsity": spec.sparsity,
        "metrics": {
            "test_accuracy": test_accuracy,
            "test_accuracy_source": accuracy_source,
            "test_accuracy_litert": litert_accuracy,
            "float_accuracy": row.get("float_accuracy") if row["source"] == "final" else None,
            "val_accuracy": row.get("val_accuracy"),
            "float_val_accuracy": row.get("float_val_accuracy"),
            "val_samples": row.get("val_samples"),
            "size_bytes": len(model),
            "tflm_arena_bytes": arena.arena_bytes,
            "peak_ram_bytes": row.get("peak_ram_bytes"),
            "host_latency_ms": row.get("host_latency_ms"),
            "tflm_agreement": agreement,  # TFLite Micro against LiteRT's reference kernels (same arithmetic)
            "tflm_agreement_xnnpack": agreement_xnnpack,  # against LiteRT's default XNNPACK kernels
            "tflm_test_accuracy": micro_accuracy,
            "tflm_reason": "" if arena.compatible else arena.reason,
            "test_samples": int(len(dataset.y_test)),
            # the post-training-quantized model's test accuracy, where QAT ran (the deployed one may be either)
            "ptq_accuracy": row.get("ptq_accuracy") if row.get("qat") in ("used", "ptq_kept") else None,
            "ptq_val_accuracy": row.get("ptq_val_accuracy") if row.get("qat") in ("used", "ptq_kept") else None,
            "qat_val_accuracy": row.get("qat_val_accuracy"),
        },
        "training": _training_record(row, config),
        "latency_by_device": latency_by_device,
        "runs_on": [{k: r[k] for k in ("device", "fits", "memory", "latency_ms", "latency_error_pct", "latency_error_max_pct",
                                       "energy_uj", "energy_error_pct", "energy_error_max_pct", "why")} for r in board_rows],
        "firmware": firmware,
        "budgets": {k: v for k, v in vars(config.budgets).items()},
        "device": config.device,
        "device_runtime": device.runtime,
        "study": config.name,
        "seed": config.seed,
        "libraries": _versions(),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    header, source = c_source(model, ident, arena.arena_bytes)
    _write_all(dest, {
        "model.tflite": model,
        "model_data.h": header.encode(),
        "model_data.cc": source.encode(),
        "model_card.json": json.dumps(card, indent=2, sort_keys=True, default=str).encode(),
        "model_card.md": _card_markdown(card).encode(),
        **firmware_files,
    })
    return card


def _class_of(dataset, i: int) -> str:
    name = str(dataset.class_names[int(dataset.y_test[i])])
    return "".join(c if c.isprintable() else " " for c in name)


def _training_record(row: dict, config: StudyConfig) -> dict | None:
    """How the exported model was trained: `{qat, distilled_from, augmentation, schedule, epochs_run}`
    (None for a proxy-trained model, whose record predates this)."""
    if row["source"] != "final":
        return None
    return {"qat": row.get("qat") or "not applicable (float model)", "qat_note": row.get("qat_note", ""),
            "qat_unannotated_layers": list(row.get("qat_unannotated") or []),
            "distilled_from": row.get("distilled_from") or None, "augmentation": row.get("augmentation"),
            "schedule": row.get("schedule"), "label_smoothing": config.final.label_smoothing,
            "epochs_run": row.get("epochs_run")}


def _write_all(dest: Path, files: dict[str, bytes]) -> None:
    """Write every file into a temporary sibling folder, then move them into `dest`; a `firmware/`
    folder an earlier export left goes first (it would not match this model)."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".nas-export-", dir=dest))
    except OSError as exc:
        raise ConfigError(f"export folder {dest} cannot be written: {exc.strerror or exc}") from None
    try:
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
        if (dest / "firmware").is_dir():  # an earlier export's: it would not match this model
            shutil.rmtree(dest / "firmware")
        for name in files:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, dest / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _g(value) -> str:
    return f"{value:.4g}" if value is not None else "—"


def _pct(value) -> str:
    return f"{value:.2%}" if value is not None else "not applicable"


def _training_markdown(card: dict) -> list[str]:
    t, m = card.get("training"), card["metrics"]
    if not t:
        return []
    lines = [f"- training: {t['epochs_run']} epochs, schedule {t['schedule']}, augmentation {t['augmentation']}, "
             f"label smoothing {t['label_smoothing']}, teacher {t['distilled_from'] or 'none'}",
             f"- quantization-aware training: {t['qat']}" + (f" ({t['qat_note']})" if t["qat_note"] else "")]
    if m.get("ptq_accuracy") is not None:
        lines.append(f"- post-training-quantized model, test accuracy: {_pct(m['ptq_accuracy'])}")
    if t["qat_unannotated_layers"]:
        lines.append(f"- layers tfmot did not annotate for QAT: {', '.join(t['qat_unannotated_layers'])}")
    return lines


def _firmware_markdown(f: dict) -> list[str]:
    files = ("The sources in `firmware/`: the model array (`model_data.c`, C and C++), an op resolver with exactly the "
             "model's operators and the arena (`model_ops.h`), a minimal `main.cc`"
             + (", the input's and output's shape, type, scale and zero point (`model_io.h`), the preprocessing from a raw "
                "image as C (`preprocess.c`; like the golden pair, not in the measured image: its resize buffers are the "
                "application's RAM) and a golden pair from the first test image (`golden.c`: the image, the model "
                "input the Python pipeline makes of it, the host TFLite Micro interpreter's output for it)"
                if f.get("build_and_run_host") else "") + ".")
    run = []
    if f.get("build_and_run_host"):
        run.append(f"Build the example on this machine (the OS's compilers, TFLite Micro built once from the pinned "
                   f"sources) and run its golden check: `{f['build_and_run_host']}`.")
    if f.get("build_and_run"):
        run.append(f"The same on the {f['core']} under QEMU: `{f['build_and_run']}`.")
    if not f.get("measured"):
        return ["", "## Firmware", "", f"Not measured on a core: {f.get('why', 'not asked for')}.",
                *(["", files, *run] if f.get("sources") else [])]
    same = {True: "identical to", False: "DIFFERENT from", None: "not compared with"}[f["outputs_match_host"]]
    return ["", "## Firmware", "",
            f"Measured on the Arm build for the {f['core']} ({f['runtime']}), run under QEMU: "
            f"{f['instructions']:,} instructions per inference (exact; not cycles), outputs {same} the host TFLite Micro "
            f"interpreter's. The firmware (registering exactly {', '.join(f['operators'])}) links to flash "
            f"{f['flash_bytes'] / KB:.1f} KB and RAM {f['ram_bytes'] / KB:.1f} KB ({f['static_ram_bytes'] / KB:.1f} KB static, "
            f"the arena of {f['arena_bytes'] / KB:.1f} KB among it, and a {f['stack_bytes']} byte stack), with newlib-nano.",
            "", files, *run]


def _board_lines(card: dict) -> list[str]:
    """The card's lead: the study's device, the accuracy its runtime reaches and its latency, said as
    measured or predicted (with the error for a model no board has run)."""
    m = card["metrics"]
    lines = [f"On `{card['device']}`, the study's device:", "",
             f"- test accuracy **{m['test_accuracy']:.2%}** ({m['test_accuracy_source']})"]
    row = next((r for r in card["runs_on"] if r["device"] == card["device"]), None)
    if row is not None:
        latency = (f"{row['latency_ms']} ms, **predicted** by the board catalog's latency model (error for a model no board "
                   f"has run: mean {row['latency_error_pct']:g}%, max {row['latency_error_max_pct']:g}%)"
                   if row["latency_ms"] is not None else f"not priced: {row['why']}")
        lines += [f"- latency {latency}",
                  f"- fits: {({True: 'yes', False: 'no'}).get(row['fits'], 'unknown')} ({row['memory'] or row['why']})"]
    else:
        entry = card["latency_by_device"].get(card["device"], {})
        value = (f"{_g(entry['latency_ms'])} ms" if entry.get("latency_ms") is not None else
                 f"{entry['instructions']:,} instructions" if entry.get("instructions") is not None else "—")
        lines.append(f"- latency {value} ({entry.get('source', 'not priced')})")
    return lines + [""]


def _card_markdown(card: dict) -> str:
    m = card["metrics"]
    agreement = f"{m['tflm_agreement']:.2%}" if m["tflm_agreement"] is not None else "not applicable"
    arena = f"{m['tflm_arena_bytes']} bytes ({m['tflm_arena_bytes'] / KB:.1f} KB)" if m["tflm_arena_bytes"] else "—"
    lines = [
        f"# Model card: {card['study']} trial {card['trial']}",
        "",
        *_board_lines(card),
        f"- dataset: `{card['dataset']}` ({len(card['classes'])} classes), input {card['input']['shape']}",
        f"- quantization: `{card['quantization']}`, pruning sparsity {card['sparsity']}",
        f"- source: {card['source']}; selection: {card['selection']}",
        f"- validation accuracy (converted model, LiteRT): {_pct(m['val_accuracy'])} on {m['val_samples'] or '—'} samples",
        f"- **test accuracy: {m['test_accuracy']:.2%}** on {m['test_samples']} samples ({m['test_accuracy_source']}; "
        f"measured once, never used to choose)",
        f"- test accuracy in LiteRT (XNNPACK, as the search measured): {m['test_accuracy_litert']:.2%}",
        f"- size: {m['size_bytes']} bytes ({m['size_bytes'] / KB:.1f} KB)",
        f"- TFLite Micro arena: {arena}",
        f"- TFLite Micro agrees with LiteRT on {agreement} of the test split (LiteRT's reference kernels; "
        f"{_pct(m['tflm_agreement_xnnpack'])} against its default XNNPACK kernels, which round int8 differently)",
        f"- test accuracy in TFLite Micro: {_pct(m['tflm_test_accuracy'])}",
        *_training_markdown(card),
        f"- host latency: {_g(m['host_latency_ms'])} ms (measured on the search host: LiteRT, 1 thread, median)",
        f"- budgets: {card['budgets']} on `{card['device']}`",
        f"- seed {card['seed']}; exported {card['exported_at']}",
        "",
        "## Latency by device",
        "",
        "| device | latency ms | instructions | source |",
        "|---|---|---|---|",
    ]
    for name, entry in card["latency_by_device"].items():
        lines.append(f"| {name} | {entry['latency_ms'] if entry['latency_ms'] is not None else '—'} | "
                     f"{format(entry['instructions'], ',') if entry.get('instructions') is not None else '—'} | {entry['source']} |")
    fits = [r for r in card["runs_on"] if r["fits"]]
    lines += ["", "## Where it runs", "",
              f"Fits {len(fits)} of {len(card['runs_on'])} microcontroller boards of the catalog (flash holds the model and "
              "SRAM its TFLite Micro arena, after a quarter of each is left to the application; a board that runs TFLite "
              "Micro on the core and kernels the firmware below was linked for is judged on that whole firmware: "
              "`memory` in model_card.json says which). Latency from the board "
              "catalog's latency model, with its mean and largest error on that board for a model no board has run; "
              "energy is the board's mean power times that latency, its error that latency error compounded with the "
              "board's power model's own (mean / max).", "",
              "| board | fits | memory judged | latency ms | error mean / max | energy uJ | energy error mean / max | why not |",
              "|---|---|---|---|---|---|---|---|"]
    for r in card["runs_on"]:
        judged = "whole firmware" if r.get("memory", "").startswith("the whole firmware") else "model + arena"
        lines.append(f"| {r['device']} | {({True: 'yes', False: 'no'}).get(r['fits'], '?')} | {judged} | "
                     f"{r['latency_ms'] if r['latency_ms'] is not None else '—'} | "
                     + (f"{r['latency_error_pct']:g}% / {r['latency_error_max_pct']:g}%" if r['latency_error_pct'] is not None else "—")
                     + f" | {r['energy_uj'] if r['energy_uj'] is not None else '—'} | "
                     + (f"{r['energy_error_pct']:g}% / {r['energy_error_max_pct']:g}%" if r.get('energy_error_pct') is not None
                        else "—") + f" | {r['why']} |")
    lines += _firmware_markdown(card.get("firmware") or {})
    lines += ["", "## Architecture", "", "```json", json.dumps(card["spec"], indent=2, sort_keys=True), "```", "",
              "## Libraries", ""]
    lines += [f"- {k} {v}" for k, v in card["libraries"].items()]
    lines += ["", "## Using it with TFLite Micro", "",
              "Add `model_data.cc` and `model_data.h` to the firmware; allocate a tensor arena of at least the size "
              f"`{card['c_array'].upper()}_ARENA_SIZE` (plus headroom for your platform's allocator) and build a "
              f"`tflite::MicroInterpreter` from `{card['c_array']}`; `firmware/` is a complete example of it.", ""]
    runtime = card.get("device_runtime", "tflm")
    if runtime in _OTHER_RUNTIMES:
        lines += [f"## Using it with the study's board runtime ({runtime})", "", _OTHER_RUNTIMES[runtime], "",
                  "Of this card's figures, the board latency and energy are that runtime's (its published results are "
                  "what the latency model was fitted on); accuracy, arena, agreement and the firmware are TFLite "
                  "Micro's, measured here: that runtime's own kernels, memory plan and code size are its own, so check "
                  "its accuracy and footprint with its tools before relying on them.", ""]
    return "\n".join(lines)


#: how a .tflite goes into a board runtime other than TFLite Micro
_OTHER_RUNTIMES = {
    "xcubeai": "Import `model.tflite` in STM32Cube.AI (X-CUBE-AI; CubeMX: Software Packs > X-CUBE-AI > add network, "
               "type TFLite) or with its command line, `stm32ai generate -m model.tflite`, which writes the C network and its "
               "activation buffer; `stm32ai validate` runs it on the board against the original.",
    "stedgeai": "Import `model.tflite` with ST Edge AI Core: `stedgeai generate --model model.tflite --target stm32` "
                "writes the C network; `stedgeai validate` checks it on the board.",
    "plumerai": "Plumerai's inference engine takes `model.tflite` through its web tool or SDK, which compiles it into a "
                "C library for the board.",
    "microtvm": "Compile `model.tflite` with TVM (`tvmc compile --target c --runtime crt --executor aot model.tflite`), "
                "with CMSIS-NN offload where the board's results used it (`--target cmsis-nn,c`).",
    "hale": "Import `model.tflite` with the HALE toolchain, which generates C code for the board.",
    "onnc": "Convert `model.tflite` with ONNC's tools for the board; they generate C code against its runtime.",
}
