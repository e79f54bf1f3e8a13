"""Honest answers (issue 16): selection on validation, every rejection infeasible to the sampler,
the space cut to the device, a changed study refused on resume, budget floors that hold, the
MedMNIST size read, a hung interpreter killed, C identifiers, library hygiene."""

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import fake_evaluate, write_medmnist, write_study
from nas import run_search
from nas.errors import ConfigError
from nas.search import Budgets, final_pareto, load_study, load_study_dataset

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}


def nas(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=900)


# --- 1. selection never sees the test split ----------------------------------------------------
def test_the_final_pareto_set_is_chosen_and_ranked_on_validation(tmp_path):
    config = load_study(write_study(tmp_path / "sel.yaml"))  # accuracy, latency, size, RAM
    row = {"status": "ok", "size_bytes": 10_000, "peak_ram_bytes": 10_000, "latency_ms": 1.0}
    finals = [{**row, "trial": 1, "val_accuracy": 0.90, "accuracy": 0.99},  # best on test, dominated on validation
              {**row, "trial": 2, "val_accuracy": 0.95, "accuracy": 0.80},
              {**row, "trial": 3, "val_accuracy": 0.93, "accuracy": 0.85, "size_bytes": 8_000},
              {**row, "trial": 4, "val_accuracy": 0.95, "accuracy": 0.70, "size_bytes": 9_000, "latency_ms": 2.0}]
    front = final_pareto(finals, config)
    # highest validation accuracy first; of the two tied on it, the smaller; test plays no part
    assert [r["trial"] for r in front] == [4, 2, 3]


def test_a_search_reports_test_but_ranks_by_validation(tmp_path):
    # fake_evaluate's test accuracy ranks models the other way round from its validation accuracy
    config = load_study(write_study(tmp_path / "s.yaml", trials=6))
    summary = run_search(config, tmp_path / "out", progress=False, evaluate=fake_evaluate)
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    assert len(pareto) >= 2 and {"val_accuracy", "test_accuracy", "val_samples"} <= set(pareto.columns)
    assert list(pareto["val_accuracy"]) == sorted(pareto["val_accuracy"], reverse=True)
    assert pareto["trial"].iloc[0] == summary.pareto[0]["trial"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "chosen on the validation split" in report and f"Validation has {len(load_study_dataset(config).y_val)} samples" in report


# --- 2. every rejection is infeasible to the sampler ---------------------------------------------
def _constraints(out: Path, name: str = "tiny_test"):
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")
    return [(t.user_attrs, t.constraints) for t in study.get_trials() if t.state.name == "COMPLETE"]


def test_every_spec_rejected_before_training_is_infeasible_in_the_study(tmp_path):
    # host-litert runs every mode and gains from pruning float32 only: pruned int8 specs are rejected
    # for a reason no budget sees, and a tight size budget rejects others
    study = write_study(tmp_path / "s.yaml", trials=4, device="host-litert", budgets={"max_size_kb": 20, "max_ram_kb": 48},
                        space_overrides={"resolution": [28], "stem_stride": [2], "num_stages": [2, 3],
                                         "quantization": ["int8", "float32"], "sparsity": [0.0, 0.5]})
    run_search(load_study(study), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    rows = _constraints(tmp_path / "out")
    rejected = [(a, c) for a, c in rows if a.get("screened")]
    trained = [(a, c) for a, c in rows if not a.get("screened")]
    assert rejected and trained
    assert all(max(c.values()) > 0 for _, c in rejected)
    assert any(c["runs"] == 1.0 and "gains nothing from pruned int8" in a["reason"] for a, c in rejected)
    assert all(set(c) == {"size", "ram", "runs"} for _, c in rows)  # the same constraints on every trial
    for attrs, c in trained:
        assert (max(c.values()) <= 0) == Budgets(max_size_kb=20, max_ram_kb=48).admits(attrs)


def test_a_budgeted_figure_nobody_measured_is_a_violation():
    budgets = Budgets(max_size_kb=64, max_latency_ms=5)
    assert budgets.violations(32 * 1024, 1000, None)["latency"] > 0
    assert budgets.violations(float("nan"), 1000, 1.0)["size"] > 0
    assert not budgets.feasible(32 * 1024, 1000, None)
    assert budgets.feasible(32 * 1024, 1000, 4.0)


# --- 3. the space is cut to the device ---------------------------------------------------------
def test_modes_and_pruning_the_device_cannot_use_are_not_offered(tmp_path):
    config = load_study(write_study(tmp_path / "s.yaml", device="cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1",
                                    space_overrides={"quantization": ["int8", "int16x8", "float32"], "sparsity": [0.0, 0.5]}))
    space = config.search_space()
    assert space.choices["quantization"] == ("int8",) and space.choices["sparsity"] == (0.0,)
    notes = " ".join(config.space_notes())
    assert "left out int16x8, float32" in notes and "sparsity: not searched" in notes and "no sparse kernels" in notes
    with pytest.raises(ConfigError, match="none of which device cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1 runs; it runs int8"):
        load_study(write_study(tmp_path / "f.yaml", device="cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1", space_overrides={"quantization": ["float32"]}))


def test_a_search_on_tflite_micro_trains_no_pruned_model(tmp_path):
    study = write_study(tmp_path / "s.yaml", trials=5, space_overrides={
        "resolution": [28], "stem_stride": [2], "num_stages": [2, 3], "quantization": ["int8", "float16"], "sparsity": [0.0, 0.5, 0.75]})
    summary = run_search(load_study(study), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    specs = [json.loads(t["spec"]) for t in summary.trials]
    assert specs and all(s["sparsity"] == 0.0 and s["quantization"] == "int8" for s in specs)
    assert any("TFLite Micro has no sparse kernels" in n for n in summary.notes)
    assert "sparsity: not searched" in (tmp_path / "out" / "report.md").read_text()


# --- 4. a changed study is refused on resume ----------------------------------------------------
@pytest.mark.parametrize("flag, value, message", [
    ("--device", "cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1", "device: host-tflm, now cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1"),
    ("--max-size-kb", "30", "budgets.max_size_kb: 40, now 30.0"),
])
def test_resuming_with_other_settings_is_refused_naming_the_difference(tmp_path, flag, value, message):
    study = write_study(tmp_path / "s.yaml", trials=2)
    run_search(load_study(study), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    before = (tmp_path / "out" / "study.db").stat().st_mtime_ns
    result = nas("search", str(study), "--out", str(tmp_path / "out"), flag, value, "--trials", "3")
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert message in line and "start a new study with another --out" in line
    assert (tmp_path / "out" / "study.db").stat().st_mtime_ns == before


def test_resuming_with_the_same_settings_and_more_trials_is_accepted(tmp_path):
    study = write_study(tmp_path / "s.yaml", trials=2)
    run_search(load_study(study), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    again = run_search(load_study(study, trials=3), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    assert again.trained + again.failed == 3


# --- 6. budget floors that hold -------------------------------------------------------------------
def test_an_impossible_size_budget_is_refused_before_any_study_exists(tmp_path):
    study = write_study(tmp_path / "s.yaml")
    result = nas("search", str(study), "--out", str(tmp_path / "out"), "--max-size-kb", "1")
    assert result.returncode == 2
    assert "can meet max size 1.0 KB (the space's smallest model needs" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_size_and_ram_floors_are_below_every_spec_of_the_space():
    from nas.latency import load_device
    from nas.measure import tflm_arena
    from nas.search import space_floor
    from nas.search._screen import _untrained_tflite, smallest_specs  # the conversion and the specs the floors use

    config = load_study("digits_demo")
    space, device = config.search_space(), load_device("host-tflm")
    floor = space_floor(space, 1, 10, device)
    rng = np.random.default_rng(3)
    for _ in range(6):
        spec = space.sample(rng)
        tflite = _untrained_tflite(spec, 1, 10)
        assert len(tflite) / 1024 >= floor["min_size_kb"], spec.to_json()
        arena = tflm_arena(tflite)
        if arena.compatible:
            assert arena.arena_bytes / 1024 >= floor["min_ram_kb"], spec.to_json()
    # and the floor is reached: the smallest specs are specs of the space and convert to exactly the floor
    smallest = smallest_specs(space, device)
    for spec in smallest["size"] + smallest["ram"]:
        space.validate(spec)
    assert min(len(_untrained_tflite(s, 1, 10)) for s in smallest["size"]) / 1024 == floor["min_size_kb"]
    arenas = [tflm_arena(_untrained_tflite(s, 1, 10)).arena_bytes for s in smallest["ram"]]
    assert min(arenas) / 1024 == floor["min_ram_kb"]
    assert floor["min_size_kb"] > 2  # a .tflite is more than its weights: the flatbuffer's own bytes count


# --- 7. MedMNIST size variants ---------------------------------------------------------------------
def test_the_medmnist_file_read_follows_the_largest_resolution_searched(tmp_path):
    write_medmnist(tmp_path / "pneumoniamnist.npz", classes=2, rgb=False)
    write_medmnist(tmp_path / "pneumoniamnist_64.npz", classes=2, rgb=False, size=64)
    study = write_study(tmp_path / "s.yaml", dataset="pneumonia", data_dir=str(tmp_path))
    assert load_study_dataset(load_study(study)).source.endswith("pneumoniamnist.npz")  # resolutions up to 28
    wide = write_study(tmp_path / "w.yaml", dataset="pneumonia", data_dir=str(tmp_path),
                       space_overrides={"resolution": [32, 48], "quantization": ["int8"], "sparsity": [0.0]})
    assert load_study_dataset(load_study(wide)).source.endswith("pneumoniamnist_64.npz")
    fixed = write_study(tmp_path / "x.yaml", dataset="pneumonia", data_dir=str(tmp_path), image_size=28,
                        space_overrides={"resolution": [32, 48], "quantization": ["int8"], "sparsity": [0.0]})
    assert load_study_dataset(load_study(fixed)).image_size == 28


# --- 8. a hung TFLite Micro interpreter is killed ----------------------------------------------
def test_a_hung_interpreter_is_killed_and_the_model_fails_with_the_reason(monkeypatch):
    import nas.measure._tflm as tflm
    from nas.measure import TflmWorker, tflm_arena

    monkeypatch.setattr(TflmWorker, "command", (sys.executable, "-c", "import time; time.sleep(600)"))
    monkeypatch.setattr(tflm, "TIMEOUT_S", 2.0)
    start = time.monotonic()
    arena = tflm_arena(b"\x00" * 64)
    assert not arena.compatible and arena.crashed
    assert "did not answer within 2 s and was killed" in arena.reason
    assert time.monotonic() - start < 60  # one timeout, not one per arena size tried


# --- 9. C identifiers -------------------------------------------------------------------------------
def test_c_identifiers_are_never_keywords_or_reserved():
    import re

    from nas.outputs import C_KEYWORDS, c_identifier

    for word in sorted(C_KEYWORDS) + ["float", "class", "__init", "_Model", "9lives", "", "a b", "x__y"]:
        ident = c_identifier(word)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident) and ident not in C_KEYWORDS, (word, ident)
        assert not re.match(r"_[A-Z_]", ident) and "__" not in ident, (word, ident)
    assert c_identifier("g_model") == "g_model"


# --- 11. library hygiene ----------------------------------------------------------------------------
def test_every_third_party_import_is_declared():
    import ast

    import re

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(declared["dependencies"]) + [d for extra in declared["optional-dependencies"].values() for d in extra]
    dists = {re.split(r"[<>=\[ ;]", n, maxsplit=1)[0].lower() for n in names}
    module_to_dist = {"PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml", "tf_keras": "tf-keras",
                      "tensorflow_model_optimization": "tensorflow-model-optimization", "ai_edge_litert": "ai-edge-litert",
                      "tflite_micro": "tflite-micro", "keras_tuner": "keras-tuner",
                      "optuna_dashboard": "optuna-dashboard"}
    imported = set()
    for path in (ROOT / "nas").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "nas"}
    missing = sorted(m for m in third_party if module_to_dist.get(m, m).lower() not in dists)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    assert "ray" in dists and not any("ray[tune]" in n for n in names)  # only Ray core is used


def test_stale_heartbeats_fail_a_trial_and_it_counts_as_interrupted(tmp_path):
    import optuna

    from nas.search import count_trials
    from nas.search._stale import fail_interrupted

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'db.sqlite'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize"])
    trial = study.ask()
    trial.set_user_attr("worker", "another-host:1")  # not this host: only the heartbeat can tell
    storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("s"), 0))
    time.sleep(2.5)
    fail_interrupted(study, storage)
    assert study.get_trials()[0].state.name == "FAIL"
    assert count_trials(study) == (0, 0, 0)  # interrupted, not a failure of the candidate


def test_a_dead_process_on_this_host_fails_its_trial_at_once(tmp_path):
    import optuna

    from nas.search._stale import fail_interrupted

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = study.ask()
    alive.set_user_attr("worker", f"{os.uname().nodename}:{os.getppid()}")  # pytest's parent: alive
    gone = study.ask()
    gone.set_user_attr("worker", f"{os.uname().nodename}:{dead.pid}")
    assert fail_interrupted(study, storage) == 1
    states = {t.number: (t.state.name, t.user_attrs.get("failed_stage")) for t in study.get_trials()}
    assert states == {0: ("RUNNING", None), 1: ("FAIL", "interrupted")}


@pytest.mark.integration  # trains
def test_training_a_candidate_leaves_the_callers_global_state_alone(monkeypatch):
    import random

    from nas.backend import keras
    from nas.candidate import TrainConfig, evaluate_candidate, initialize
    from nas.data import load_dataset
    from helpers import TINY_SPEC

    def no_clear(*args, **kwargs):
        raise AssertionError("a library call cleared the caller's Keras session")

    monkeypatch.setattr(keras.backend, "clear_session", no_clear)
    data, cfg = load_dataset("digits"), TrainConfig(epochs=1, max_train_samples=200)
    evaluate_candidate(TINY_SPEC, data, cfg)  # first call: imports (TensorFlow's own import-time effects are not ours)
    np.random.seed(123)
    random.seed(123)
    numpy_state, python_state = np.random.get_state()[1].copy(), random.getstate()
    result = evaluate_candidate(TINY_SPEC, data, cfg)
    assert result.status == "ok", result.reason
    assert (np.random.get_state()[1] == numpy_state).all() and random.getstate() == python_state
    from nas.spec import build_model

    a, b = build_model(TINY_SPEC, 1, 10), build_model(TINY_SPEC, 1, 10)
    initialize(a, 7)
    initialize(b, 7)
    assert all((x == y).all() for x, y in zip(a.get_weights(), b.get_weights()))
    initialize(b, 8)
    assert not all((x == y).all() for x, y in zip(a.get_weights(), b.get_weights()))


def test_the_readme_names_every_column_of_trials_and_pareto_csv_and_no_other():
    """The README's column table is the files' documentation: a column added, renamed or dropped in
    one place and not the other fails here."""
    import re

    from nas.outputs import PARETO_COLUMNS, TRIAL_COLUMNS

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("<!-- columns:"):readme.index("<!-- /columns -->")]
    named = {"trials": [], "pareto": []}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for where in ("trials", "pareto") if cells[1] == "both" else (cells[1],):
            named[where] += re.findall(r"`([a-z_0-9]+)`", cells[0])
    assert sorted(named["trials"]) == sorted(TRIAL_COLUMNS)
    assert sorted(named["pareto"]) == sorted(PARETO_COLUMNS)
    assert "accuracy" not in TRIAL_COLUMNS + PARETO_COLUMNS  # it meant proxy validation in one file, test in the other
