"""Search strategies: Optuna samplers and KerasTuner over the same space and budgets (issue 5)."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from helpers import fake_evaluate, write_study
from nas import run_search
from nas.search import Budgets, load_study, open_study, scalarize

pytest.importorskip("keras_tuner")


def test_scalarized_objective_ranks_feasible_above_infeasible():
    budgets = Budgets(max_size_kb=64, max_ram_kb=64, max_latency_ms=10)
    small = {"accuracy": 0.6, "size_bytes": 10_000, "peak_ram_bytes": 10_000, "latency_ms": 1.0}
    big = {"accuracy": 0.99, "size_bytes": 200_000, "peak_ram_bytes": 10_000, "latency_ms": 1.0}
    screened = {"screened": True, "size_bytes": 70_000, "peak_ram_bytes": 10_000, "latency_ms": None}
    feasible, over, rejected = (scalarize(a, budgets, "COMPLETE") for a in (small, big, screened))
    assert feasible > over and feasible > rejected
    assert scalarize(small, budgets, "FAIL") < feasible
    cheaper = {**small, "size_bytes": 5_000}
    assert scalarize(cheaper, budgets, "COMPLETE") > feasible  # same accuracy, smaller: better


@pytest.mark.parametrize("strategy", ["kerastuner-bayes", "kerastuner-hyperband"])
def test_kerastuner_strategies_drive_the_same_search(tmp_path, strategy):
    study = write_study(tmp_path / "study.yaml", trials=6, sampler=strategy,
                        proxy={"epochs": 3, "batch_size": 64, "max_train_samples": 300})
    config = load_study(study)
    summary = run_search(config, tmp_path / "out", progress=False, evaluate=fake_evaluate)
    assert summary.trained + summary.failed == 6
    stored = open_study(config, tmp_path / "out")
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert (tmp_path / "out" / "pareto.csv").is_file() and len(trials) >= 6
    # every trial's parameters came from KerasTuner's oracle, none from the sampler's random fallback
    assert {t.user_attrs.get("proposed_by") for t in stored.trials} == {"kerastuner"}
    specs = [t.user_attrs["spec_hash"] for t in stored.trials]
    assert len(set(specs)) > 1  # the oracle proposes different specs
    if strategy == "kerastuner-hyperband":
        epochs = [t.user_attrs.get("proxy_epochs") for t in stored.trials if not t.user_attrs.get("screened")]
        assert all(e is not None and 1 <= e <= 3 for e in epochs)


def test_strategy_flag_names_the_valid_strategies(tmp_path):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    result = subprocess.run([sys.executable, "-m", "nas.cli", "search", "digits_demo", "--strategy", "grid",
                             "--out", str(tmp_path / "x")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert "unknown strategy 'grid'" in result.stderr and "kerastuner-hyperband" in result.stderr
    assert not (tmp_path / "x").exists()
