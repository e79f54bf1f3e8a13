"""Honest answers, second pass (issue 35): no spec trained twice whatever the strategy or how often a
study is resumed, every budget refused up front, a planned end when a strategy runs out of specs,
and successive halving on like-for-like costs. The search tests use `fake_evaluate` (no training)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import fake_evaluate, write_study
from nas.errors import ConfigError, InfeasibleBudgetError
from nas.latency import load_device
from nas.search import analytic_screen, load_study
from nas.workflow import run_search

#: A space of four specs (two stage counts x two modes), all within the tiny study's budgets.
FOUR_SPECS = """name: four_specs
description: four specs, for tests that use a space up
resolution: [28]
stem_channels: [8]
stem_stride: [2]
num_stages: [2, 3]
head_channels: [32]
quantization: [int8, float16]
sparsity: [0.0]
stages:
  - {depth: [1], channels: [8], expansion: [1], kernel: [3], stride: [1]}
  - {depth: [1], channels: [12], expansion: [2], kernel: [3], stride: [2]}
  - {depth: [1], channels: [16], expansion: [2], kernel: [3], stride: [2]}
"""


@pytest.fixture
def four_specs(tmp_path, monkeypatch):
    """Search space `four_specs`, in a user catalog folder (NAS_CATALOG_DIR)."""
    (tmp_path / "catalog" / "search_spaces").mkdir(parents=True)
    (tmp_path / "catalog" / "search_spaces" / "four_specs.yaml").write_text(FOUR_SPECS)
    monkeypatch.setenv("NAS_CATALOG_DIR", str(tmp_path / "catalog"))
    return {"space": "four_specs", "space_overrides": {}}


@pytest.mark.parametrize("strategy", ["random", "nsga2", "tpe"])
def test_a_study_resumed_twice_never_trains_a_spec_twice(tmp_path, strategy):
    out = tmp_path / "out"
    study = write_study(tmp_path / "s.yaml", sampler=strategy, trials=4)
    for trials in (4, 8, 12):
        summary = run_search(load_study(study, trials=trials), out, progress=False, evaluate=fake_evaluate)
        assert summary.trained == trials
    trained = [r for r in summary.trials if r["state"] == "complete" and not r["screened"]]
    assert len(trained) == 12 and len({r["spec_hash"] for r in trained}) == 12
    finals = [r["spec_hash"] for r in summary.pareto]
    assert len(finals) == len(set(finals))  # each architecture once in the answer


def test_a_spec_asked_again_is_told_as_a_duplicate_and_the_search_ends_as_planned(tmp_path, monkeypatch, four_specs):
    import nas.search._driver as driver

    monkeypatch.setattr(driver, "MAX_DUPLICATES_IN_A_ROW", 15)
    study = write_study(tmp_path / "s.yaml", sampler="random", trials=8, **four_specs)
    summary = run_search(load_study(study), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    trained = [r for r in summary.trials if r["state"] == "complete" and not r["screened"]]
    assert 1 <= len(trained) <= 4 and len({r["spec_hash"] for r in trained}) == len(trained)
    duplicates = [r for r in summary.trials if r["state"] == "duplicate"]
    assert len(duplicates) >= 15 and all(r["duplicate_of"] in {t["trial"] for t in trained} for r in duplicates)
    assert summary.failed == 0  # a duplicate ask is not a candidate's failure
    assert "specs in a row that earlier trials have" in summary.stopped
    # a planned end: final training and every output are still written, and say why it stopped
    assert summary.final >= 1 and (tmp_path / "out" / "pareto.csv").is_file()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "stopped asking before 8 trained trials" in report and "asked again and not trained" in report


def test_the_guided_pool_used_up_is_a_planned_end_with_outputs(tmp_path, four_specs):
    study = write_study(tmp_path / "s.yaml", sampler="guided", trials=8, **four_specs)
    config = load_study(study)
    summary = run_search(config, tmp_path / "out", progress=False, evaluate=fake_evaluate)
    within = sum(analytic_screen(spec, 1, 10, config.budgets, load_device(config.device)).feasible
                 for spec in _every_spec(config.search_space()))
    assert 1 <= within < 4 and summary.trained == within  # every spec estimated within budget, each once
    assert len({r["spec_hash"] for r in summary.trials}) == len(summary.trials)
    assert all(r["proposed_by"].startswith("guided") for r in summary.trials)  # no undirected draw took over
    assert f"tried every spec of its pool estimated within budget ({within} of 15,000 drawn" in summary.stopped
    assert summary.final >= 1 and (tmp_path / "out" / "report.md").is_file()
    # a rerun asking for more ends the same way, at once, without training anything again
    again = run_search(load_study(study, trials=10), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    assert again.trained == within and len(again.trials) == len(summary.trials) and again.stopped


def _every_spec(space):
    """Every spec of a small space."""
    from itertools import product

    options = dict(space.parameters())
    specs = {}
    for values in product(*options.values()):
        chosen = dict(zip(options, values))
        spec = space.build(lambda name, _: chosen[name])
        specs[spec.hash] = spec
    return list(specs.values())


def test_trials_csv_says_who_proposed_each_trial_and_where_halving_stopped_it(tmp_path):
    import pandas as pd

    study = write_study(tmp_path / "s.yaml", sampler="guided", trials=4)
    run_search(load_study(study), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    table = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert {"proposed_by", "halved_at"} <= set(table.columns)
    assert table["proposed_by"].str.startswith("guided").all()


def test_an_impossible_energy_budget_is_refused_before_anything_is_written(tmp_path, four_specs):
    import time

    study = write_study(tmp_path / "s.yaml", device="cortex-m33-stm32u575-xcubeai-7.1", **four_specs)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nas.cli", "search", str(study), "--max-energy-uj", "0.001",
                             "--out", str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert result.returncode != 0 and time.perf_counter() - started < 120
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "max energy 0.001 uJ" in lines[0] and "uJ per inference" in lines[0], result.stderr
    assert not (tmp_path / "out").exists()
    # the floor is the fastest spec's energy: just under it is refused, just over it is not
    from nas.search import Budgets, check_budgets_reachable

    config = load_study(study)
    space, device = config.search_space(), load_device(config.device)
    floor = check_budgets_reachable(space, 1, 10, Budgets(max_energy_uj=1e6), device)["min_energy_uj"]
    assert floor > 0
    with pytest.raises(InfeasibleBudgetError, match="max energy"):
        check_budgets_reachable(space, 1, 10, Budgets(max_energy_uj=0.99 * floor), device)
    assert check_budgets_reachable(space, 1, 10, Budgets(max_energy_uj=1.01 * floor), device)


def test_a_study_that_trained_nothing_resumes_with_corrected_budgets(tmp_path, monkeypatch):
    import nas.search._driver as driver

    monkeypatch.setattr(driver, "MAX_SCREENED_IN_A_ROW", 3)
    # a size budget that every draw breaks, let through as if the space's floor had been under it
    tight = write_study(tmp_path / "s.yaml", sampler="random", trials=3,
                        budgets={"max_size_kb": 0.5, "max_ram_kb": 48, "max_latency_ms": 50})
    floor = driver.check_budgets_reachable
    monkeypatch.setattr(driver, "check_budgets_reachable", lambda *a: None)  # as if the floor had let it through
    with pytest.raises(InfeasibleBudgetError, match="no candidate was trained"):
        run_search(load_study(tight), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    monkeypatch.setattr(driver, "check_budgets_reachable", floor)
    monkeypatch.setattr(driver, "MAX_SCREENED_IN_A_ROW", 2000)
    assert (tmp_path / "out" / "study.db").exists()  # the refused study is left, holding only rejections
    summary = run_search(load_study(tight, max_size_kb=40), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    assert summary.trained == 3 and summary.screened >= 3
    # a study that trained something still refuses other budgets, naming them
    with pytest.raises(ConfigError, match="budgets.max_size_kb: 40"):
        run_search(load_study(tight, max_size_kb=30), tmp_path / "out", progress=False, evaluate=fake_evaluate)


def test_halving_compares_the_candidate_with_its_peers_on_estimates_alike():
    from nas.data import load_dataset
    from nas.latency import load_device
    from nas.search import Estimator, halving_rule
    from nas.spec import ArchSpec

    from helpers import TINY_SPEC

    config = load_study("digits_demo")
    data = load_dataset("digits")
    estimator = Estimator(config, config.search_space(), load_device(config.device), data.channels, data.num_classes)
    spec = TINY_SPEC.replace(quantization="int8")
    est = estimator.costs(estimator.estimate(spec), {})
    # the same architecture trained earlier, its measured size and arena a few per cent off the estimate
    peer = {"spec": spec.to_json(), "accuracy": 0.9, "learning_curve": [0.5, 0.9],
            "size_bytes": 0.97 * est["size_bytes"], "peak_ram_bytes": 0.91 * est["peak_ram_bytes"],
            "latency_ms": est["latency_ms"], "energy_uj": est["energy_uj"]}
    other = {**peer, "spec": ArchSpec.from_json(peer["spec"]).replace(head_channels=128).to_json()}
    rule = halving_rule(estimator, (1,), spec, [peer, other], {}, 143)
    assert rule.peers[0][2] == rule.cheap  # the same spec costs the same: it cannot look costlier than itself
    assert len(rule.peers) == 2 and rule.peers[1][2] != rule.cheap
