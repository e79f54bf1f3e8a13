"""The default strategy (issue 17): a feasible space-filling start, a surrogate whose ranking picks
what trains, successive halving that stops weak specs, a warm start from an earlier study, and a
time budget. Most tests use the engine's parts directly or `fake_evaluate` (no training); the
halving test trains a small model for real."""

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest

from nas import run_search
from nas.data import load_dataset
from nas.errors import ConfigError
from nas.latency import load_device
from nas.search import (DEFAULT_SAMPLER, Estimator, GuidedProposer, Halving, analytic_screen, load_study, open_study,
                        rungs_for, trained_rows)
from nas.search._guided import expected_hv_improvement, startup_trials  # noqa: F401 - tests read the module's parts
from nas.search._halving import nondominated_ranks

from helpers import TINY_SPEC, fake_evaluate, write_study

DIGITS = load_dataset("digits")


def _config(**changes):
    config = load_study("digits_demo", trials=12)
    return dataclasses.replace(config, **changes)


def _row(estimator, spec, accuracy, corrections=None):
    """A trained row as the driver stores it, with costs the estimator would predict."""
    est = estimator.estimate(spec)
    costs = estimator.costs(est, corrections or {})
    return {"spec": spec.to_json(), "accuracy": accuracy, "size_bytes": costs["size_bytes"],
            "peak_ram_bytes": costs["peak_ram_bytes"], "latency_ms": costs["latency_ms"], "energy_uj": costs["energy_uj"]}


def test_the_default_strategy_is_guided_and_optuna_names_it(tmp_path):
    assert DEFAULT_SAMPLER == "guided"
    assert load_study("digits_demo").sampler == "guided"
    assert load_study("digits_demo", sampler="optuna").sampler == "guided"  # --strategy optuna
    assert load_study(write_study(tmp_path / "s.yaml", sampler="optuna")).sampler == "guided"  # sampler: optuna
    assert load_study("digits_demo").halving_on and not load_study("digits_demo", sampler="tpe").halving_on


def test_start_up_design_stays_feasible_and_spreads_out():
    config = _config(budgets=dataclasses.replace(load_study("digits_demo").budgets, max_size_kb=24, max_latency_ms=30))
    space, device = config.search_space(), load_device(config.device)
    proposer = GuidedProposer(config, space, device, DIGITS.channels, DIGITS.num_classes, pool_size=1500)
    picks, taken = [], set()
    for _ in range(startup_trials(config.trials)):
        p = proposer.propose([], taken, [s for s in picks])
        assert p.source.startswith("guided start-up")
        picks.append(p.spec)
        taken.add(p.spec.hash)
    for spec in picks:
        assert analytic_screen(spec, DIGITS.channels, DIGITS.num_classes, config.budgets, device).feasible
    # random draws of the same space mostly break these budgets: the design is not feasible by luck
    rng = np.random.default_rng(0)
    draws = [space.sample(rng) for _ in range(200)]
    feasible = sum(analytic_screen(s, DIGITS.channels, DIGITS.num_classes, config.budgets, device).feasible for s in draws)
    assert feasible < 0.8 * len(draws)
    # and it spreads: the picks are further apart than random feasible specs in the descriptor space
    chosen = proposer.standardized([proposer.estimator.estimate(s) for s in picks])
    pool = proposer.standardized([e for _, e in list(proposer.pool.values())[:len(picks)]])
    gap = lambda x: min(np.linalg.norm(a - b) for i, a in enumerate(x) for b in x[i + 1:])  # noqa: E731
    assert gap(chosen) > gap(pool)


@pytest.mark.parametrize("larger_is_better", [True, False])
def test_the_surrogate_ranking_chooses_the_next_spec(larger_is_better):
    """Trained rows where accuracy rises (or falls) with model size: the surrogate's pick for the
    best accuracy follows that trend, so its ranking, not chance, chooses."""
    config = _config()
    space, device = config.search_space(), load_device(config.device)
    proposer = GuidedProposer(config, space, device, DIGITS.channels, DIGITS.num_classes, pool_size=1500)
    estimator = proposer.estimator
    estimates = sorted((e for _, e in proposer.pool.values()), key=lambda e: e.descriptor[0])
    spread = [estimates[int(i)] for i in np.linspace(0, len(estimates) - 1, 8)]
    lo, hi = spread[0].descriptor[0], spread[-1].descriptor[0]
    trained = []
    for e in spread:
        share = (e.descriptor[0] - lo) / (hi - lo)
        trained.append(_row(estimator, e.spec, 0.6 + 0.35 * (share if larger_is_better else 1 - share)))
    taken = {e.spec.hash for e in spread}
    # 8 trained trials, 3 of them start-up: the sixth surrogate pick is an accuracy pick (every second)
    p = proposer.propose(trained, taken)
    assert "expected improvement of the best accuracy" in p.source
    params = estimator.estimate(p.spec).descriptor[0]
    median = float(np.median([e.descriptor[0] for e in estimates]))
    assert (params > median) if larger_is_better else (params < median)
    assert p.predicted_accuracy > 0.8


def test_expected_hypervolume_improvement_prefers_what_extends_the_front():
    front = np.array([[0.2, 0.5, 0.5, 0.5]])
    cheap = np.array([[0.6, 0.6, 0.6],  # costlier than the front point
                      [0.3, 0.3, 0.3],  # cheaper
                      [1.5, 0.1, 0.1]])  # over a budget: outside the box
    mu, sd = np.array([0.3, 0.3, 0.0]), np.array([0.02, 0.02, 0.02])
    ehvi = expected_hv_improvement(mu, sd, cheap, front)
    assert ehvi[1] > 10 * ehvi[0] and ehvi[2] == 0.0
    # a more accurate prediction is worth more at the same costs
    better = expected_hv_improvement(np.array([0.1]), np.array([0.02]), cheap[1:2], front)
    assert better[0] > ehvi[1]


def test_halving_rungs_and_noise_aware_ranks():
    assert rungs_for(4) == (1, 3) and rungs_for(9) == (1, 3) and rungs_for(10) == (1, 3, 9) and rungs_for(1) == ()
    # within two standard errors of 143 validation samples nothing dominates on accuracy
    assert nondominated_ranks([(0.90, 0.5), (0.89, 0.1)], samples=143) == [0, 0]
    assert nondominated_ranks([(0.90, 0.5), (0.10, 0.1)], samples=143) == [1, 0]
    peers = ((1, 0.10, (0.2, 0.2)), (1, 0.11, (0.3, 0.3)), (3, 0.95, (0.2, 0.2)), (3, 0.9, (0.3, 0.3)))
    rule = Halving((1, 3), (0.5, 0.5), peers, val_samples=143)
    assert not rule(1, 0.098)  # every model still at chance after one epoch: nothing is stopped for its size
    assert rule(3, 0.40)  # costlier and far less accurate than both peers at epoch 3
    assert not rule(3, 0.93)  # as accurate as the best: goes on
    assert not rule(2, 0.10)  # not a rung
    assert not Halving((1, 3), (0.5, 0.5), peers[:1], val_samples=143)(1, 0.0)  # too few peers to judge


@pytest.mark.integration
def test_successive_halving_stops_a_weak_candidate_after_one_epoch():
    from nas.candidate import TrainConfig, evaluate_candidate

    data = load_dataset("digits")
    cfg = TrainConfig(epochs=4, patience=4)
    peers = tuple((1, 0.99, (0.1, 0.1, 0.1)) for _ in range(4))  # four cheaper peers, near perfect after an epoch
    stopped = evaluate_candidate(TINY_SPEC, data, cfg, stop_rule=Halving((1, 3), (0.9, 0.9, 0.9), peers, 143))
    assert stopped.status == "ok", stopped.reason
    assert stopped.halved_at == 1 and stopped.epochs_run == 1 and len(stopped.learning_curve) == 1
    full = evaluate_candidate(TINY_SPEC, data, cfg, stop_rule=Halving((1, 3), (0.9, 0.9, 0.9), (), 143))
    assert full.halved_at is None and full.epochs_run == 4 and len(full.learning_curve) == 4


def test_a_guided_search_records_its_proposals_and_halving(tmp_path):
    study = write_study(tmp_path / "s.yaml", sampler="guided", trials=6)
    summary = run_search(load_study(study), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    assert summary.trained == 6
    sources = [r["proposed_by"] for r in summary.trials]
    assert all(s.startswith("guided") for s in sources)
    assert any("surrogate" in s for s in sources) and sources[0].startswith("guided start-up")
    trained = [r for r in summary.trials if not r["screened"]]
    assert all(r["halving_rungs"] == [1] for r in trained)  # the study's proxy has 2 epochs
    assert len({r["spec_hash"] for r in summary.trials}) == len(summary.trials)  # no spec proposed twice


def test_warm_start_trains_the_earlier_studys_best_specs_first(tmp_path):
    first = write_study(tmp_path / "a.yaml", sampler="random", trials=6)
    run_search(load_study(first), tmp_path / "a", progress=False, evaluate=fake_evaluate)
    earlier = trained_rows(open_study(load_study(first), tmp_path / "a"))
    best = max(earlier, key=lambda r: r["accuracy"])
    second = write_study(tmp_path / "b.yaml", name="tiny_b", sampler="guided", trials=4, warm_start=str(tmp_path / "a"))
    summary = run_search(load_study(second), tmp_path / "b", progress=False, evaluate=fake_evaluate)
    first_trial = min(summary.trials, key=lambda r: r["trial"])
    assert first_trial["proposed_by"].startswith("warm start: a trial")
    assert first_trial["spec_hash"] == best["spec_hash"]
    assert "warm start" in (tmp_path / "b" / "report.md").read_text()


def test_warm_start_from_another_device_is_refused(tmp_path):
    first = write_study(tmp_path / "a.yaml", sampler="random", trials=2)
    run_search(load_study(first), tmp_path / "a", progress=False, evaluate=fake_evaluate)
    other = write_study(tmp_path / "b.yaml", name="tiny_b", device="cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1",
                        space_overrides={"resolution": [28], "stem_stride": [2], "num_stages": [2, 3],
                                         "quantization": ["int8"], "sparsity": [0.0]}, warm_start=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="same space and device"):
        run_search(load_study(other), tmp_path / "b", progress=False, evaluate=fake_evaluate)
    assert not (tmp_path / "b").exists()  # refused before anything was written


def test_a_time_budget_stops_asking(tmp_path):
    def slow(spec, dataset, cfg, split="val"):
        if split == "val":
            time.sleep(1.0)
        return fake_evaluate(spec, dataset, cfg, split)

    study = write_study(tmp_path / "s.yaml", sampler="random", trials=50)
    started = time.perf_counter()
    summary = run_search(load_study(study), tmp_path / "out", progress=False, evaluate=slow, time_budget_s=5.0)
    assert 1 <= summary.trained < 10 and time.perf_counter() - started < 60


def test_estimator_calibrates_size_and_arena_on_trained_rows():
    config = _config()
    estimator = Estimator(config, config.search_space(), load_device(config.device), DIGITS.channels, DIGITS.num_classes)
    rng = np.random.default_rng(1)
    specs = [config.search_space().sample(rng) for _ in range(6)]
    # rows whose true overhead is twice the prior's: the refit moves the prediction most of the way
    rows = []
    for spec in specs:
        est = estimator.estimate(spec)
        prior = estimator.costs(est, {})
        rows.append({"spec": spec.to_json(), "accuracy": 0.5,
                     "size_bytes": est.weight_bytes + 2 * (prior["size_bytes"] - est.weight_bytes),
                     "peak_ram_bytes": prior["peak_ram_bytes"]})
    fitted = estimator.corrections(rows)
    est = estimator.estimate(specs[0])
    truth = rows[0]["size_bytes"]
    assert abs(estimator.costs(est, fitted)["size_bytes"] - truth) < 0.5 * abs(estimator.costs(est, {})["size_bytes"] - truth)
    assert set(fitted) == {("int8", "size_bytes"), ("int8", "peak_ram_bytes")}  # keyed by (mode, objective)


def test_a_host_device_without_a_latency_budget_still_ranks_by_hypervolume(tmp_path, monkeypatch):
    """A host device predicts no latency before training and the study sets no latency budget: the
    latency axis is scaled by what the trials measured, so the front stays inside the box and the
    expected improvements are not all zero."""
    import nas.search._guided as guided

    config = load_study(write_study(tmp_path / "s.yaml", budgets={"max_size_kb": 64, "max_ram_kb": 64}, trials=12))
    space, device = config.search_space(), load_device(config.device)
    assert device.predict_latency_ms(TINY_SPEC, 1, 10) is None
    proposer = GuidedProposer(config, space, device, DIGITS.channels, DIGITS.num_classes, pool_size=800)
    estimates = sorted((e for _, e in proposer.pool.values()), key=lambda e: e.descriptor[0])
    # 7 trained, 3 of them start-up: surrogate pick 4 (from 0), a hypervolume one (the odd picks are accuracy's)
    picked = [estimates[int(i)] for i in np.linspace(0, len(estimates) - 1, 7)]
    trained = [{**_row(proposer.estimator, e.spec, 0.7 + 0.04 * i), "latency_ms": 2.0 + 3 * i} for i, e in enumerate(picked)]
    scales = proposer.estimator.scales([], {}, trained)
    assert scales["latency_ms"] == max(r["latency_ms"] for r in trained)
    latency = config.objectives.index("latency_ms") - 1  # its column among the cheap objectives
    assert np.nanmax(proposer.estimator.measured_box(trained, scales)[:, latency]) == 1.0
    scores = []
    real = guided.expected_hv_improvement
    monkeypatch.setattr(guided, "expected_hv_improvement", lambda *a, **k: scores.append(real(*a, **k)) or scores[-1])
    p = proposer.propose(trained, {e.spec.hash for e in picked})
    assert p.source.startswith("guided surrogate (expected hypervolume improvement)"), p.source
    (score,) = scores  # one expected improvement per candidate spec
    assert np.count_nonzero(score > 0) > 1, "every expected hypervolume improvement is zero: argmax ranks nothing"
    cheap = proposer.estimator.box([e for _, e in proposer.pool.values()], {}, scales)
    assert np.isnan(cheap[:, latency]).all()  # never predicted, never invented


class _ManyWorkers:
    """A caller's executor (`run_study(executor=...)`): `capacity` trials in flight, finished in
    submission order, recording what was in flight at each submission."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.inflight: dict[int, object] = {}
        self.queue: list[int] = []
        self.most_in_flight = 0
        self.same_spec_in_flight = 0
        self.closed = False
        self.timeouts: list = []  # the timeout the driver gave each wait
        self.hangs: set[int] = set()  # submissions (0, 1, ...) that hang: reported timed out, as Ray's executor does
        self.hung: set[int] = set()  # their trial numbers
        self.submitted = 0

    def submit(self, key, spec, proxy=None, stop_rule=None):
        from nas.search import TrialOutcome

        self.same_spec_in_flight += any(s.hash == spec.hash for s, _ in self.inflight.values())
        if self.submitted in self.hangs:
            self.hung.add(key)
        self.submitted += 1
        self.inflight[key] = (spec, TrialOutcome("ok", result=fake_evaluate(spec, self.dataset, proxy or self.config.proxy)))
        self.queue.append(key)
        self.most_in_flight = max(self.most_in_flight, len(self.inflight))

    def wait(self, timeout_s=None):
        from nas.search import timed_out

        self.timeouts.append(timeout_s)
        key = self.queue.pop(0)
        outcome = self.inflight.pop(key)[1]
        yield key, timed_out(timeout_s) if key in self.hung else outcome

    def evaluate_final(self, specs, train_config, dataset=None):
        return [fake_evaluate(spec, dataset or self.dataset, train_config, split="test") for spec in specs]

    def close(self, cancel=False):
        self.closed = True


def test_a_callers_executor_runs_the_search_and_parallel_proposals_are_distinct(tmp_path):
    """Eight trials in flight at once, all asked before any is told: the guided strategy proposes
    eight different specs (issue 37: no duplicate spec in flight), and the search ends as usual."""
    from nas.search import load_study_dataset, run_study

    config = load_study(write_study(tmp_path / "s.yaml", trials=12))
    executor = _ManyWorkers(8)
    executor.dataset, executor.config = load_study_dataset(config), config
    summary = run_study(config, tmp_path / "out", progress=False, executor=executor)
    assert summary.trained + summary.failed == 12 and executor.closed
    assert executor.most_in_flight == 8 and executor.same_spec_in_flight == 0
    specs = [r["spec_hash"] for r in summary.trials if r["state"] == "complete"]
    assert len(specs) == len(set(specs))


def test_a_hung_trial_timed_out_by_its_executor_is_failed_once_and_the_search_goes_on(tmp_path):
    """Issue 37: the driver gives every trial its timeout; a trial the executor reports timed out is
    one failed trial with the reason, its spec not trained again, and the study still completes."""
    from nas.search import load_study_dataset, run_study

    config = load_study(write_study(tmp_path / "s.yaml", trials=10))
    executor = _ManyWorkers(4)
    executor.dataset, executor.config, executor.hangs = load_study_dataset(config), config, {2}
    summary = run_study(config, tmp_path / "out", progress=False, executor=executor, trial_timeout_s=7)
    assert set(executor.timeouts) == {7}
    assert summary.trained + summary.failed == 10 and summary.failed == 1
    (hung,) = [r for r in summary.trials if r.get("failed_stage") == "timeout"]
    assert "no result 7 s after it started" in hung["reason"]
    trained = [r["spec_hash"] for r in summary.trials if r["state"] == "complete"]
    assert hung["spec_hash"] not in trained and len(trained) == len(set(trained))


def test_a_joined_driver_proposes_around_another_drivers_trials_in_flight(tmp_path, monkeypatch):
    """Issue 37: the believer weighs every spec in flight on the study, a live peer driver's too."""
    import time as clock

    import optuna

    from nas.search import load_study_dataset, run_study
    from nas.search import _guided

    config = load_study(write_study(tmp_path / "s.yaml", sampler="guided", trials=6))
    (tmp_path / "out").mkdir()
    study = open_study(config, tmp_path / "out", None, config.identity(load_study_dataset(config).fingerprint))
    peer, theirs = "elsewhere:4242", TINY_SPEC.replace(quantization="int8")
    study.set_user_attr("driver:" + peer, clock.time())  # a live driver on another machine ...
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, user_attrs={
        "worker": peer, "spec": theirs.to_json(), "spec_hash": theirs.hash}))  # ... training this spec
    seen = []
    real = _guided.GuidedProposer.propose
    monkeypatch.setattr(_guided.GuidedProposer, "propose",
                        lambda self, trained, taken, pending=(), *a: seen.append([s.hash for s in pending])
                        or real(self, trained, taken, pending, *a))
    executor = _ManyWorkers(2)
    executor.dataset, executor.config = load_study_dataset(config), config
    summary = run_study(config, tmp_path / "out", progress=False, executor=executor, join=True)
    assert seen and all(theirs.hash in pending for pending in seen)
    assert summary.trained + summary.failed == 5  # the peer's trial in flight counts toward the six


def test_the_automatic_trial_timeout_follows_the_longest_trained_trial():
    from nas.search import AUTO_TIMEOUT_FACTOR, AUTO_TIMEOUT_FLOOR_S, TrialTimeout

    auto = TrialTimeout(None, [{"timings_s": json.dumps({"train": 30.0, "convert": 2.0})}, {"timings_s": None}])
    assert auto.seconds() is None  # one trained trial sets no scale yet
    auto.observe({"train": 10.0})
    assert auto.seconds() is None
    auto.observe({"train": 400.0, "measure": 100.0})
    assert auto.seconds() == AUTO_TIMEOUT_FACTOR * 500.0
    quick = TrialTimeout(None, [{"timings_s": {"train": 1.0}}] * 3)
    assert quick.seconds() == AUTO_TIMEOUT_FLOOR_S  # a fresh worker's start-up is not a hang
    assert TrialTimeout(42.0).seconds() == 42.0


def test_the_driver_reads_its_study_once_and_its_ledger_holds_what_the_storage_holds(tmp_path, monkeypatch):
    """Issue 37: asks no longer read every trial in flight from the storage. The driver reads the study
    once and adds each trial as it tells it; what it holds at the end is what a fresh read gives."""
    from nas.search import load_study_dataset, run_study
    from nas.search import _ledger

    reads, ledgers = [], []
    real_read, real_init = _ledger.Ledger.read, _ledger.Ledger.__init__
    monkeypatch.setattr(_ledger.Ledger, "read", lambda self: reads.append(1) or real_read(self))
    monkeypatch.setattr(_ledger.Ledger, "__init__", lambda self, *a, **k: ledgers.append(self) or real_init(self, *a, **k))
    config = load_study(write_study(tmp_path / "s.yaml", trials=12))
    executor = _ManyWorkers(4)
    executor.dataset, executor.config = load_study_dataset(config), config
    summary = run_study(config, tmp_path / "out", progress=False, executor=executor)
    assert len(reads) == 1
    (kept,) = ledgers
    fresh = _ledger.Ledger(open_study(config, tmp_path / "out"))
    assert kept.trained == fresh.trained and kept.taken == fresh.taken and kept.footprints == fresh.footprints
    assert [r["trial"] for r in kept.trained] == sorted(r["trial"] for r in kept.trained)
    # the driver says what it cost per ask and per tell
    assert summary.driver_ms["asks"] >= 12 and summary.driver_ms["tells"] == 12
    assert 0 < summary.driver_ms["ask_p50"] <= summary.driver_ms["ask_p99"]
    assert "driver: " in (tmp_path / "out" / "search.log").read_text()


def _ehvi_reference(mu, sd, cheap, front, points=2 ** 13):
    """The integral as first written (issue 17): every front point, every candidate, no shortcut."""
    from scipy.stats import norm, qmc

    x = qmc.Sobol(1 + cheap.shape[1], scramble=True, seed=0).random(points)
    open_ = np.ones(len(x), bool)
    for f in front:
        open_ &= ~np.all(x >= f, axis=1)
    x = x[open_]
    under = np.all(cheap[:, None, :] <= x[None, :, 1:], axis=2)
    return (under * norm.cdf((x[None, :, 0] - mu[:, None]) / sd[:, None])).sum(axis=1) / points


def test_the_fast_hypervolume_improvement_matches_the_full_integral():
    """Issue 37's shortcuts (the front reduced to its non-dominated points, the integral skipped for specs
    the front dominates even at +3 sd, the points masked per objective) give the integral's values and
    its pick, with and without cheap objectives; a spec the front dominates scores 0."""
    from nas.search._guided import _nondominated

    rng = np.random.default_rng(3)
    front = rng.uniform(0.1, 0.9, (40, 3))
    reduced = _nondominated(front)
    assert 0 < len(reduced) < len(front)
    assert not any(np.all(a >= b) and np.any(a > b) for a in reduced for b in reduced)
    for columns in (2, 0):  # accuracy alone: no cheap objective
        mu, sd = rng.uniform(0.1, 0.5, 300), rng.uniform(0.01, 0.05, 300)
        cheap = rng.uniform(0, 1, (300, columns))
        fast = expected_hv_improvement(mu, sd, cheap, front[:, :1 + columns])
        slow = _ehvi_reference(mu, sd, cheap, front[:, :1 + columns])
        assert np.allclose(fast, slow, atol=1e-4) and int(np.argmax(fast)) == int(np.argmax(slow))
    corner = np.array([[0.05, 0.05, 0.05]])  # dominates nearly all of the box
    hopeless = expected_hv_improvement(np.array([0.5]), np.array([0.01]), np.array([[0.5, 0.5]]), corner)
    hopeful = expected_hv_improvement(np.array([0.01]), np.array([0.01]), np.array([[0.5, 0.5]]), corner)
    assert hopeless[0] == 0.0 and hopeful[0] > 0.0


def test_the_surrogate_sees_at_most_gp_rows_and_reuses_its_kernel_between_refits(monkeypatch):
    """Issue 37: the surrogate's cost stays flat as a study grows. Past GP_ROWS trained trials it is
    fitted on GP_ROWS of them (the most accurate half among them), and its hyperparameters are
    re-optimised (from where they were) every GP_REFIT_EVERY new rows, not on every proposal."""
    from nas.search import _guided

    y = np.linspace(0.0, 1.0, 1000)
    keep = _guided._gp_rows(y, 64)
    assert len(keep) == 64 and set(range(968, 1000)) <= set(keep.tolist())
    assert np.array_equal(_guided._gp_rows(y[:50], 64), np.arange(50))

    fits = []
    real = _guided.fit_surrogate
    monkeypatch.setattr(_guided, "fit_surrogate", lambda x, yy, seed, kernel=None, optimise=True:
                        fits.append((len(yy), kernel, optimise)) or real(x, yy, seed, kernel, optimise))
    proposer = GuidedProposer(_config(), load_study("digits_demo").search_space(), load_device("host-tflm"), 1, 10, pool_size=50)
    rng = np.random.default_rng(0)
    n = _guided.GP_ROWS // 4 + 1
    for extra in range(_guided.GP_REFIT_EVERY + 2):
        proposer._surrogate(rng.normal(size=(n + extra, 3)), rng.uniform(0.5, 0.9, n + extra))
    assert [(kernel is None, optimise) for _, kernel, optimise in fits] == \
        [(True, True)] + [(False, False)] * (_guided.GP_REFIT_EVERY - 1) + [(False, True), (False, False)]
    assert all(rows <= _guided.GP_ROWS for rows, _, _ in fits)

    # a refit past REFIT_ROWS: its steps on REFIT_ROWS rows, then the kept kernel on every row
    fits.clear()
    n = _guided.REFIT_ROWS + 40
    proposer._kernel = (n - _guided.GP_REFIT_EVERY, proposer._kernel[1])
    proposer._surrogate(rng.normal(size=(n, 3)), rng.uniform(0.5, 0.9, n))
    assert [(rows, kernel is None, optimise) for rows, kernel, optimise in fits] == \
        [(_guided.REFIT_ROWS, False, True), (n, False, False)]

    # a young study: afresh when its rows grew by FRESH_GROWTH, a few steps from there on each new row
    fits.clear()
    young = GuidedProposer(_config(), load_study("digits_demo").search_space(), load_device("host-tflm"), 1, 10, pool_size=50)
    for rows in (8, 8, 9, 10, 11, 12, 13):
        young._surrogate(rng.normal(size=(rows, 3)), rng.uniform(0.5, 0.9, rows))
    assert [(rows, kernel is None, optimise) for rows, kernel, optimise in fits] == \
        [(8, True, True), (8, False, False), (9, False, True), (10, True, True), (11, False, True), (12, False, True),
         (13, True, True)]


def test_interrupted_trials_are_queued_again_once_and_only_what_nothing_else_trains():
    import optuna

    from nas.search._stale import RERUN_OF, requeue_interrupted

    study = optuna.create_study(directions=["maximize"])
    dist = {"x": optuna.distributions.CategoricalDistribution(["a", "b", "c"])}

    def add(state, x, **attrs):
        study.add_trial(optuna.trial.create_trial(state=state, params={"x": x}, distributions=dist,
                                                  values=[0.5] if state.name == "COMPLETE" else None,
                                                  user_attrs={"spec_hash": x, **attrs}))

    add(optuna.trial.TrialState.COMPLETE, "a")
    add(optuna.trial.TrialState.FAIL, "b", failed_stage="interrupted")  # 1: in flight when its driver died
    add(optuna.trial.TrialState.FAIL, "b", failed_stage="duplicate")  # the same spec asked meanwhile: trains nothing
    add(optuna.trial.TrialState.FAIL, "a", failed_stage="interrupted")  # 3: trial 0 trained it
    add(optuna.trial.TrialState.FAIL, "c", failed_stage="interrupted", proxy_epochs=4)  # 4: at another fidelity ...
    add(optuna.trial.TrialState.COMPLETE, "c", proxy_epochs=2)  # ... than this one
    assert requeue_interrupted(study) == 2
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert sorted((t.user_attrs[RERUN_OF], t.system_attrs["fixed_params"]["x"]) for t in waiting) == [(1, "b"), (4, "c")]
    assert requeue_interrupted(study) == 0  # a second resume queues nothing more
