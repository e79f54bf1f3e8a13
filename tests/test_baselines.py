"""The study's baselines and the comparison with a search (issue 5)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import fake_evaluate, write_fashion_mnist, write_study

NAS = [sys.executable, "-m", "nas.cli"]
REFERENCE = Path(__file__).resolve().parents[1] / "studies" / "paper_results.csv"


def run(*args):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    return subprocess.run([*NAS, *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def digits_baselines(tmp_path_factory):
    out = tmp_path_factory.mktemp("baselines")
    result = run("baselines", "--dataset", "digits", "--models", "custom", "--epochs", "3", "--out", str(out),
                 "--modes", "tensorflow,tflite,tflite_quant_by_size,tflite_quant_by_latency,tflite_int8")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.integration  # trains
def test_baselines_csv_has_the_studys_layout(digits_baselines):
    with open(REFERENCE, newline="") as fh:
        header = next(csv.reader(fh))
    with open(digits_baselines / "baselines.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0].keys()) == header
    metrics = {r["metric"]: r for r in rows if r["model"] == "custom"}
    assert {"accuracy_pct", "size_reduction_pct", "inference_time_s", "peak_ram_bytes", "latency_ms"} <= set(metrics)
    acc = metrics["accuracy_pct"]
    # the two dynamic-range columns are one conversion
    assert acc["tflite_quant_by_size"] == acc["tflite_quant_by_latency"] != ""
    # full-integer int8 stays within 2 points of the float model
    assert float(acc["tensorflow"]) - float(acc["tflite_int8"]) <= 2.0
    assert float(metrics["peak_ram_bytes"]["tflite_int8"]) > 0 and float(metrics["latency_ms"]["tflite_int8"]) > 0
    assert metrics["accuracy_pct"]["tflite_int16"] == ""  # not asked for
    report = (digits_baselines / "report.md").read_text()
    assert "the converter treats alike" in report


@pytest.mark.integration  # trains
def test_a_failing_mode_is_a_row_with_its_reason(tmp_path, monkeypatch):
    import nas.candidate as conversion  # fault injection: the converter fails for one mode
    from nas.outputs import run_baselines, write_baselines
    from nas.errors import CandidateFailed

    real = conversion.convert

    def flaky(model, mode, representative=None, **kw):
        if mode == "int16x8":
            raise CandidateFailed("conversion", "int16x8: simulated converter failure")
        return real(model, mode, representative, **kw)

    monkeypatch.setattr(conversion, "convert", flaky)
    columns = ["tensorflow", "tflite_int16", "tflite_int8", "tflite_float16"]
    said = []
    rows = run_baselines("digits", ["custom"], columns, tmp_path, epochs=1, progress=said.append)
    write_baselines(rows, columns, tmp_path)
    values = rows[0].values
    assert values["tflite_int16"]["status"].startswith("conversion failed: int16x8: simulated")
    assert values["tflite_int8"]["status"] == "ok"
    # LiteRT runs float16 weights, TFLite Micro does not: a failure on the microcontroller, not "ok"
    assert values["tflite_float16"]["status"].startswith("LiteRT only: TFLite Micro cannot run it (its dequantize kernel"), values
    assert said[0].startswith("[model 1/1] custom: ") and any("tflite_int8 (3/4)" in m for m in said), said
    text = (tmp_path / "baselines.csv").read_text()
    assert "simulated converter failure" in text


@pytest.mark.integration  # trains
def test_fashion_mnist_command_reads_the_real_files_and_prints_the_studys_figures(tmp_path):
    data = write_fashion_mnist(tmp_path / "fmnist")
    out = tmp_path / "out"
    result = run("baselines", "--dataset", "fashion_mnist", "--data-dir", str(data), "--models", "custom",
                 "--modes", "tensorflow,tflite_int8", "--epochs", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "The study (28x28)" in report and "88.23" in report


def test_unknown_model_lists_the_valid_ones(tmp_path):
    result = run("baselines", "--dataset", "digits", "--models", "resnet", "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "custom, mobilenet, vgg16" in result.stderr
    assert not (tmp_path / "x").exists()


def _fake_run(folder: Path, rows: list[dict], device: str = "host-tflm", seed: int = 0) -> Path:
    from nas.search import load_study

    folder.mkdir()
    config = load_study("digits_demo", device=device, seed=seed)
    (folder / "study.json").write_text(json.dumps(config.to_dict()))
    columns = ["trial", "accuracy", "size_bytes", "latency_ms", "host_latency_ms", "peak_ram_bytes", "quantization"]
    with open(folder / "pareto.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.mark.integration  # trains
def test_compare_states_which_baselines_are_dominated(digits_baselines, tmp_path):
    with open(digits_baselines / "baselines.csv", newline="") as fh:
        metrics = {r["metric"]: r for r in csv.DictReader(fh)}
    int8_acc = float(metrics["accuracy_pct"]["tflite_int8"]) / 100
    int8_size = float(metrics["size_bytes"]["tflite_int8"])
    int8_latency = float(metrics["latency_ms"]["tflite_int8"])
    run_dir = _fake_run(tmp_path / "run", [
        # as accurate, half the size, faster: dominates the int8 baseline
        {"trial": 7, "accuracy": int8_acc, "size_bytes": int8_size / 2, "host_latency_ms": int8_latency / 2,
         "peak_ram_bytes": 1000, "quantization": "int8"},
        # tiny but much less accurate: dominates nothing
        {"trial": 9, "accuracy": 0.2, "size_bytes": 100, "host_latency_ms": 0.001, "peak_ram_bytes": 500, "quantization": "int8"},
    ])
    result = run("compare", str(run_dir), str(digits_baselines), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    by_column = {p["column"]: p for p in data["points"]}
    assert by_column["tflite_int8"]["dominated_by"] == 7
    assert Path(data["table"]).is_file() and "dominated" in Path(data["table"]).read_text()
    worse = _fake_run(tmp_path / "worse", [{"trial": 1, "accuracy": 0.1, "size_bytes": 10 * int8_size,
                                            "host_latency_ms": 10 * int8_latency, "peak_ram_bytes": 1, "quantization": "int8"}])
    data = json.loads(run("compare", str(worse), str(digits_baselines), "--json").stdout)
    assert data["dominated"] == 0


@pytest.mark.integration  # trains
def test_compare_on_a_board_prices_the_baselines_there_and_marks_what_does_not_run(digits_baselines, tmp_path):
    from nas.latency import load_device

    board = load_device("cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1")
    with open(digits_baselines / "baselines.csv", newline="") as fh:
        metrics = {r["metric"]: r for r in csv.DictReader(fh)}
    int8_file = digits_baselines / "models" / "digits-custom-tflite_int8.tflite"
    on_board = board.predict(int8_file.read_bytes()).latency_ms
    int8_acc = float(metrics["accuracy_pct"]["tflite_int8"]) / 100
    int8_size = float(metrics["size_bytes"]["tflite_int8"])
    # faster than the baseline on the host, slower on the board: on the board it must not dominate
    run_dir = _fake_run(tmp_path / "run", [
        {"trial": 3, "accuracy": int8_acc, "size_bytes": int8_size / 2, "latency_ms": 2 * on_board,
         "host_latency_ms": 1e-6, "peak_ram_bytes": 1000, "quantization": "int8"},
        {"trial": 4, "accuracy": int8_acc, "size_bytes": int8_size / 2, "latency_ms": on_board / 2,
         "host_latency_ms": 1e3, "peak_ram_bytes": 1000, "quantization": "int8"},
    ], device=board.name)
    result = run("compare", str(run_dir), str(digits_baselines), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    by_column = {p["column"]: p for p in data["points"]}
    assert by_column["tflite_int8"]["latency_ms"] == pytest.approx(on_board)
    assert by_column["tflite_int8"]["on_board"] == "fits" and by_column["tflite_int8"]["dominated_by"] == 4
    assert by_column["tflite"]["on_board"].startswith("does not run") and by_column["tflite"]["dominated_by"] is None
    assert board.name in Path(data["table"]).read_text()


@pytest.mark.integration  # trains
def test_compare_needs_a_finished_search(tmp_path, digits_baselines):
    result = run("compare", str(tmp_path), str(digits_baselines))
    assert result.returncode == 2 and "no finished search" in result.stderr


# --- the split the baselines learnt from (issue 35) ----------------------------------------------

def _recorded_baselines(folder: Path, seed: int) -> Path:
    """A baselines folder as `nas baselines --seed SEED` writes it (through `write_baselines`), with
    made-up figures instead of a training run."""
    from nas.data import DataSplit, load_dataset
    from nas.outputs import BaselineRow, write_baselines

    split = DataSplit.of(load_dataset("digits", seed=seed), seed)
    values = {"tflite_int8": {"accuracy_pct": 90.0, "size_bytes": 20000, "latency_ms": 0.5, "peak_ram_bytes": 4000,
                              "status": "ok"}}
    folder.mkdir()
    write_baselines([BaselineRow("digits", "32x32", "custom", values, (), split)], ["tflite_int8"], folder)
    return folder


def _dominating_run(folder: Path, seed: int) -> Path:
    return _fake_run(folder, [{"trial": 2, "accuracy": 0.95, "size_bytes": 10000, "host_latency_ms": 0.1,
                               "peak_ram_bytes": 1000, "quantization": "int8"}], seed=seed)


def test_a_split_fingerprint_changes_with_the_seed_and_only_with_it():
    from nas.data import DataSplit, load_dataset

    zero, again, one = (DataSplit.of(load_dataset("digits", seed=s), s) for s in (0, 0, 1))
    assert zero == again and zero.differences(again) == ""
    assert zero.fingerprint != one.fingerprint and zero.differences(one) == "seed 0 vs 1"
    assert DataSplit.from_dict(json.loads(json.dumps(zero.to_dict()))) == zero


def test_compare_refuses_baselines_trained_on_another_seeds_split(tmp_path):
    baselines = _recorded_baselines(tmp_path / "baselines", seed=0)
    run_dir = _dominating_run(tmp_path / "run", seed=1)
    result = run("compare", str(run_dir), str(baselines))
    assert result.returncode == 2, result.stderr[-3000:]
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "trained on split seed 0 (digits" in message and "seed 0 vs 1" in message and "--seed 1" in message
    assert not (run_dir / "compare").exists()  # refused before anything was written


def test_compare_takes_baselines_of_the_studys_split(tmp_path):
    baselines = _recorded_baselines(tmp_path / "baselines", seed=1)
    run_dir = _dominating_run(tmp_path / "run", seed=1)
    result = run("compare", str(run_dir), str(baselines), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["dominated"] == 1
    assert "fingerprint" in (baselines / "report.md").read_text()


def test_compare_refuses_baselines_that_record_no_split(tmp_path):
    baselines = _recorded_baselines(tmp_path / "baselines", seed=0)
    (baselines / "split.json").unlink()  # as an earlier version wrote them
    result = run("compare", str(_dominating_run(tmp_path / "run", seed=0)), str(baselines))
    assert result.returncode == 2 and "carry no record of their data split" in result.stderr


def test_a_warm_start_from_another_seed_names_the_split_its_specs_were_ranked_on(tmp_path, capsys):
    from nas import run_search
    from nas.search import load_study

    first = write_study(tmp_path / "a.yaml", sampler="random", trials=4, seed=0)
    run_search(load_study(first), tmp_path / "a", progress=False, evaluate=fake_evaluate)
    capsys.readouterr()
    for seed, other in ((1, True), (0, False)):
        second = write_study(tmp_path / f"b{seed}.yaml", name="tiny_b", trials=4, seed=seed,
                             warm_start=str(tmp_path / "a"))
        summary = run_search(load_study(second), tmp_path / f"b{seed}", progress=False, evaluate=fake_evaluate)
        warm = [r["proposed_by"] for r in summary.trials if str(r.get("proposed_by", "")).startswith("warm start")]
        assert warm and all("on digits seed 0, split " in source for source in warm)
        assert all(("not this study's split" in source) == other for source in warm)
        stderr = capsys.readouterr().err
        assert ("its specs were ranked on digits seed 0" in stderr) == other
        assert ("not this study's split" in (tmp_path / f"b{seed}" / "report.md").read_text()) == other


@pytest.mark.integration  # trains
def test_compare_refuses_what_nas_baselines_trained_under_another_seed(digits_baselines, tmp_path):
    assert json.loads((digits_baselines / "split.json").read_text())["seed"] == 0  # `nas baselines`' default
    result = run("compare", str(_dominating_run(tmp_path / "run", seed=1)), str(digits_baselines))
    assert result.returncode == 2 and "seed 0 vs 1" in result.stderr
