"""A real search on digits: Optuna + SQLite in a temp folder, real training, conversion, LiteRT
and TFLite Micro; then resume, Pareto, export."""

import json
import os
import re
import shlex
import subprocess
import sys

import pandas as pd
import pytest

from nas import run_search
from nas.search import load_study
from nas.units import KB

from helpers import arm, write_study

pytestmark = pytest.mark.integration


def nas(*args, cwd=None):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    study = write_study(root / "study.yaml")
    result = nas("search", str(study), "--out", str(root / "out"), "--json", "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    return root, study, json.loads(result.stdout)


def test_search_writes_every_output(run):
    root, _, summary = run
    out = root / "out"
    for name in ("study.db", "trials.csv", "pareto.csv", "report.md", "pareto.png", "study.json"):
        assert (out / name).is_file(), name
    assert summary["trained"] + summary["failed"] == 3
    assert not list(out.rglob("*.tmp")), "no temporary file may be left"


def test_pareto_rows_respect_the_budgets(run):
    root, study, _ = run
    config = load_study(study)
    pareto = pd.read_csv(root / "out" / "pareto.csv")
    assert len(pareto) >= 1
    for column in ("trial", "test_accuracy", "size_bytes", "peak_ram_bytes", "latency_ms", "quantization", "spec"):
        assert column in pareto.columns
    assert "accuracy" not in pareto.columns  # a name that meant proxy validation in one file and test in the other
    # where each latency comes from: host-tflm's is measured here, so it states no model error
    assert (pareto["latency_source"] == "measured: this host, LiteRT 1 thread (median)").all()
    assert pareto["latency_error_pct"].isna().all() and pareto["latency_error_max_pct"].isna().all()
    assert (pareto["size_bytes"] <= config.budgets.max_size_kb * KB).all()
    assert (pareto["peak_ram_bytes"] <= config.budgets.max_ram_kb * KB).all()
    assert (pareto["latency_ms"] <= config.budgets.max_latency_ms).all()
    assert (pareto["split"] == "test").all()
    assert pareto["test_accuracy"].between(0, 1).all()


def test_modes_the_device_cannot_run_are_never_sampled_and_rejections_are_infeasible(run):
    import optuna

    root, _, summary = run
    trials = pd.read_csv(root / "out" / "trials.csv")
    assert (trials["quantization"] == "int8").all()  # float16 was cut from the space: host-tflm cannot run it
    assert "left out float16, which host-tflm (tflm) does not run" in (root / "out" / "report.md").read_text()
    screened = trials[trials["screened"]]
    assert summary["screened"] == len(screened)
    assert screened["proxy_val_accuracy"].isna().all()  # never trained
    study = optuna.load_study(study_name="tiny_test", storage=f"sqlite:///{root / 'out' / 'study.db'}")
    for t in study.get_trials():
        if t.user_attrs.get("screened"):
            assert max(t.constraints.values()) > 0, t.number


def test_pareto_cli_outputs_parse(run):
    root, _, _ = run
    rows = json.loads(nas("pareto", str(root / "out"), "--json").stdout)
    csv = nas("pareto", str(root / "out"), "--csv").stdout
    assert len(rows) == len(pd.read_csv(root / "out" / "pareto.csv")) == csv.count("\n") - 1


def test_export_best_writes_all_files_and_passes_tflite_micro(run):
    root, _, _ = run
    dest = root / "deploy"
    result = nas("export", str(root / "out"), "--best", "--out", str(dest), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    card = json.loads(result.stdout)
    assert sorted(p.name for p in dest.iterdir()) == ["firmware", "model.tflite", "model_card.json", "model_card.md", "model_data.cc",
                                                      "model_data.h"]
    pareto = pd.read_csv(root / "out" / "pareto.csv")
    assert card["trial"] == pareto.sort_values(["val_accuracy", "size_bytes"], ascending=[False, True])["trial"].iloc[0]
    assert "chosen on the validation split" in card["selection"] and card["metrics"]["val_accuracy"] is not None
    assert card["metrics"]["tflm_agreement"] >= 0.99
    m = card["metrics"]  # the headline is the accuracy TFLite Micro reaches (host-tflm's runtime), LiteRT's beside it
    assert m["test_accuracy"] == m["tflm_test_accuracy"] and m["test_accuracy_source"].startswith("TFLite Micro")
    assert 0 <= m["test_accuracy_litert"] <= 1
    # host-tflm has no core: firmware/ is written all the same, with the host's command, sources and golden pair
    f = card["firmware"]
    assert not f["measured"] and f["build_and_run_host"] == f"nas firmware run {dest / 'firmware'} --core host"
    assert {"main.cc", "model_data.c", "model_ops.h", "golden.c", "preprocess.c", "model_io.h"} <= {
        p.name for p in (dest / "firmware").iterdir()}
    assert "kArenaBytes = " in (dest / "firmware" / "model_ops.h").read_text()
    printed = nas("export", str(root / "out"), "--best", "--out", str(dest)).stdout
    assert f"build and run: {f['build_and_run_host']}" in printed and "(TFLite Micro; LiteRT " in printed, printed
    md = (dest / "model_card.md").read_text()
    assert md.index("the study's device") < md.index("## Latency by device")  # the card leads with the study's device
    assert card["metrics"]["size_bytes"] == (dest / "model.tflite").stat().st_size
    header = (dest / "model_data.h").read_text()
    assert f"#define G_MODEL_ARENA_SIZE {card['metrics']['tflm_arena_bytes']}" in header
    assert "alignas(16) const unsigned char g_model[]" in (dest / "model_data.cc").read_text()
    assert card["libraries"]["tensorflow"].startswith("2.")
    training = card["training"]  # issue 13: how the deployed model was trained
    assert training["schedule"].startswith("cosine") and training["augmentation"].startswith("shift")
    assert training["qat"] in ("used", "ptq_kept", "not_needed") and training["distilled_from"] is None
    assert training["epochs_run"] >= 1
    assert pareto["ptq_val_accuracy"].notna().all() and pareto["float_val_accuracy"].notna().all()


@arm
def test_export_measures_the_firmware_on_the_arm_build_and_writes_sources_that_compile(run, tmp_path):
    import shutil

    root, _, _ = run
    result = nas("export", str(root / "out"), "--best", "--out", str(tmp_path), "--firmware-core", "cortex-m4", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    card = json.loads(result.stdout)
    f = card["firmware"]
    assert f["measured"] and f["core"] == "cortex-m4" and f["outputs_match_host"] is True
    assert f["flash_bytes"] > card["metrics"]["size_bytes"] + 20_000 and f["ram_bytes"] >= f["arena_bytes"] + f["stack_bytes"]
    assert "(the study's board runs" not in f["runtime"]  # host-tflm is TFLite Micro
    folder = tmp_path / "firmware"
    assert sorted(p.name for p in folder.iterdir()) == ["golden.c", "golden.h", "main.cc", "model_data.c", "model_data.h",
                                                        "model_io.h", "model_ops.h", "preprocess.c", "preprocess.h"]
    assert "constexpr size_t kArenaBytes = " in (folder / "model_ops.h").read_text()
    io = (folder / "model_io.h").read_text()  # the int8 model's input: pixels / 255 - 128, as quantized
    assert "#define NAS_INPUT_ZERO_POINT -128" in io and "#define NAS_INPUT_SCALE 0.0039215" in io
    assert "## Firmware" in (tmp_path / "model_card.md").read_text()
    if shutil.which("gcc"):  # the model array, the golden pair and the preprocessing are C, as well as C++
        for source in ("model_data.c", "golden.c", "preprocess.c"):
            subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-c", source, "-o", "x.o"], cwd=folder, check=True)
            subprocess.run(["g++", "-x", "c++", "-Wall", "-Werror", "-c", source, "-o", "x.o"], cwd=folder, check=True)
        (folder / "x.o").unlink()
    # the one command the export prints builds the example and passes its golden check under QEMU
    assert f"build and run: {f['build_and_run']}" in nas("export", str(root / "out"), "--best", "--out", str(tmp_path / "again"),
                                                           "--firmware-core", "cortex-m4").stdout.replace("again/", "")
    ran = nas(*shlex.split(f["build_and_run"])[1:])
    assert ran.returncode == 0 and "golden check: passed" in ran.stdout, ran.stdout + ran.stderr
    assert re.search(r"preprocessing: \d+ of the \d+ input values equal the host's", ran.stdout), ran.stdout  # the raw image's
    # and on this machine, with the OS's compilers: the command the export prints beside it
    assert f["build_and_run_host"] == f"nas firmware run {folder} --core host"
    host = nas(*shlex.split(f["build_and_run_host"])[1:])
    assert host.returncode == 0 and "golden check: passed" in host.stdout, host.stdout + host.stderr
    # and fails when the output is not the golden one
    golden = (folder / "golden.c").read_text()
    last = golden.rindex("0x", 0, golden.index("g_golden_output_len"))
    (folder / "golden.c").write_text(golden[:last] + ("0x01" if golden[last:last + 4] != "0x01" else "0x02") + golden[last + 4:])
    failed = nas(*shlex.split(f["build_and_run"])[1:])
    assert failed.returncode == 1 and "golden check: FAILED: 1 of the" in failed.stdout, failed.stdout + failed.stderr
    none = nas("export", str(root / "out"), "--best", "--out", str(tmp_path / "plain"), "--firmware-core", "none", "--json")
    assert json.loads(none.stdout)["firmware"] == {"measured": False, "why": "not asked for (--firmware-core none)"}
    assert not (tmp_path / "plain" / "firmware").exists()


def test_export_c_array_compiles_and_names_are_sanitised(run, tmp_path):
    import shutil

    root, _, _ = run
    for name, ident in (("9 evil;name", "g_9_evil_name"), ("float", "g_float")):
        result = nas("export", str(root / "out"), "--best", "--out", str(tmp_path), "--name", name)
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"extern const unsigned char {ident}[];" in (tmp_path / "model_data.h").read_text()
        if shutil.which("g++"):
            subprocess.run(["g++", "-std=c++17", "-c", "model_data.cc", "-o", "model_data.o"], cwd=tmp_path, check=True)


def test_second_run_resumes_instead_of_restarting(run):
    root, study, _ = run
    before = pd.read_csv(root / "out" / "trials.csv")
    calls = []

    def counting_evaluate(spec, dataset, cfg, split="val"):
        from nas.candidate import evaluate_candidate

        calls.append(split)
        return evaluate_candidate(spec, dataset, cfg, split=split)

    config = load_study(study, trials=4)
    summary = run_search(config, root / "out", progress=False, evaluate=counting_evaluate)
    after = pd.read_csv(root / "out" / "trials.csv")
    assert summary.trained + summary.failed == 4
    assert calls.count("val") == 1  # one new proxy trial, not four
    assert calls.count("test") <= config.final_top_k  # only Pareto members not retrained before
    kept = after[after["trial"].isin(before["trial"])]
    assert kept[["trial", "state", "proxy_val_accuracy"]].equals(before[["trial", "state", "proxy_val_accuracy"]])


def test_budget_no_spec_can_meet_fails_before_training(tmp_path):
    study = write_study(tmp_path / "study.yaml")
    result = nas("search", str(study), "--out", str(tmp_path / "out"), "--max-size-kb", "0.5")
    assert result.returncode == 2
    assert "no candidate of space 'mobilenet_tiny' can meet max size 0.5 KB" in result.stderr
    assert "smallest model needs" in result.stderr
    assert not (tmp_path / "out" / "study.db").exists()


def test_journal_storage_holds_the_study_and_resumes(tmp_path):
    from helpers import fake_evaluate

    study = write_study(tmp_path / "s.yaml", trials=2)
    journal = tmp_path / "study.journal"
    first = run_search(load_study(study), tmp_path / "out", storage=str(journal), progress=False, evaluate=fake_evaluate)
    assert journal.is_file() and journal.stat().st_size > 0
    assert not (tmp_path / "out" / "study.db").exists()
    assert first.trained == 2
    again = run_search(load_study(study, trials=3), tmp_path / "out", storage=str(journal), progress=False,
                       evaluate=fake_evaluate)
    assert again.trained == 3
    assert len(pd.read_csv(tmp_path / "out" / "trials.csv")) > 3 - 1


def test_a_search_where_every_candidate_fails_stops_and_says_why(tmp_path):
    from nas.errors import NasError
    from nas.candidate import CandidateResult

    def always_fails(spec, dataset, cfg, split="val"):
        return CandidateResult(spec, dataset.name, status="failed", failed_stage="training", reason="loss became NaN or infinite")

    study = write_study(tmp_path / "s.yaml", trials=8)
    with pytest.raises(NasError, match="the first 5 trained candidates all failed; last: training: loss became NaN"):
        run_search(load_study(study), tmp_path / "out", progress=False, evaluate=always_fails)


def test_a_tflm_crash_on_the_untrained_model_does_not_reject_the_spec(monkeypatch):
    import nas.measure
    from nas.latency import load_device
    from nas.measure import TflmArena
    from nas.search import Budgets, footprint_screen

    from helpers import TINY_SPEC

    crashed = TflmArena(False, None, "the TFLite Micro interpreter aborted (SIGABRT)", crashed=True)
    monkeypatch.setattr(nas.measure, "tflm_arena", lambda model: crashed)
    verdict = footprint_screen(TINY_SPEC, 1, 10, Budgets(max_ram_kb=1000), load_device("host-tflm"))
    assert verdict.feasible and verdict.peak_ram_bytes > 0
    refused = TflmArena(False, None, "Didn't find op for builtin opcode 'X'")
    monkeypatch.setattr(nas.measure, "tflm_arena", lambda model: refused)
    verdict = footprint_screen(TINY_SPEC, 1, 10, Budgets(), load_device("host-tflm"))
    assert not verdict.feasible and "Didn't find op" in verdict.reason


def test_a_trained_model_tflm_cannot_run_fails_its_trial_on_a_tflm_device(tmp_path):
    from helpers import fake_evaluate

    def not_for_tflm(spec, dataset, cfg, split="val"):
        import dataclasses

        result = fake_evaluate(spec, dataset, cfg, split)
        return dataclasses.replace(result, tflm_compatible=False, tflm_reason="aborted (SIGABRT)")

    study = write_study(tmp_path / "s.yaml", trials=5)
    with pytest.raises(Exception, match="all failed; last: tflm: TFLite Micro cannot run the trained model"):
        run_search(load_study(study), tmp_path / "out", progress=False, evaluate=not_for_tflm)


def test_exporting_a_trial_that_was_never_retrained_says_so_in_its_success_line(run, tmp_path):
    root, _, _ = run
    trials = pd.read_csv(root / "out" / "trials.csv")
    retrained = {int(p.stem.split("-")[1]) for p in (root / "out" / "final").glob("trial-*.json")}
    trained = trials[(trials["state"] == "complete") & (~trials["screened"].astype(bool))]["trial"]
    proxy_only = [int(t) for t in trained if int(t) not in retrained]
    assert proxy_only, "3 trained trials and final_top_k 2: one was never retrained"
    result = nas("export", str(root / "out"), "--trial", str(proxy_only[0]), "--out", str(tmp_path), "--firmware-core", "none")
    assert result.returncode == 0, result.stderr[-2000:]
    first = result.stdout.splitlines()[0]
    assert "WARNING: proxy training only, never retrained" in first, first
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["source"] == "proxy training (not retrained)"
    assert card["metrics"]["val_accuracy"] == pytest.approx(float(trials.set_index("trial").loc[proxy_only[0], "proxy_val_accuracy"]))
