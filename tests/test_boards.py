"""The microcontroller board catalog: profiles from the MLPerf Tiny rows, the joint latency model, and
boards as a unit in the product (device listing, memory budgets, where a model fits)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

NAS = [sys.executable, "-m", "nas.cli"]


def run(*args):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    return subprocess.run([*NAS, *args], capture_output=True, text=True, env=env, timeout=600)


def test_devices_json_lists_the_catalog_with_numeric_errors():
    result = run("devices", "--json")
    assert result.returncode == 0, result.stderr
    boards = [d for d in json.loads(result.stdout) if d["latency_model"] == "mcu-catalog"]
    assert len(boards) >= 25
    assert {"Cortex-M0+", "Cortex-M4", "Cortex-M7", "Cortex-M33", "Cortex-M85"} <= {b["core"] for b in boards}
    for b in boards:
        assert b["unit"] == "ms" and b["clock_mhz"] > 0 and b["runtime"]
        assert isinstance(b["loo_mean_pct"], float) and b["loo_max_pct"] >= b["loo_mean_pct"] > 0
        assert b["refs"] >= 3
    table = run("devices").stdout
    assert "LOO mean" in table and "cortex-m33-stm32u575-xcubeai-10.2" in table


def test_profiles_merge_spellings_and_leave_out_what_they_cannot_price():
    from nas.calibration import board_profiles

    profiles = {p.name: p for p in board_profiles()}
    # X-CUBE-AI "9.0.0" (H7A3) and "9.0" (L4R5) are one release; HALE's float variant is not a profile
    assert "cortex-m7-stm32h7a3-xcubeai-9.0" in profiles and "cortex-m4-stm32l4r5-xcubeai-9.0" in profiles
    assert not any("float" in name for name in profiles)
    # Plumerai's H7A3 system file names the U575 part by a slip: the Cortex-M7 at 280 MHz is an H7A3
    assert profiles["cortex-m7-stm32h7a3-plumerai-2023.05"].sram_kb == 1312
    assert profiles["cortex-m33-stm32u575-xcubeai-10.2"].sram_kb == 786  # datasheet, not the submitters' 768KB
    assert profiles["cortex-m33-stm32u385-xcubeai-10.2"].sram_kb is None  # not checked: left empty
    assert all(len(p.latency_ms) >= 3 for p in profiles.values())
    assert profiles["cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1"].latency_ms["ResNet-8 (CIFAR-10)"] == pytest.approx(704.23, rel=1e-3)


def _synthetic(perturb: float = 1.0):
    """Profiles whose published times follow the model exactly (one row perturbed by `perturb`)."""
    from nas.calibration import BoardProfile

    refs = {"a": {"conv": 9e7, "pointwise": 1e6, "dwconv": 0.0, "fc": 1e5, "other": 1e5},
            "b": {"conv": 2e7, "pointwise": 2e7, "dwconv": 1e7, "fc": 1e5, "other": 1e5},
            "c": {"conv": 1e7, "pointwise": 5e7, "dwconv": 3e7, "fc": 1e5, "other": 1e5},
            "d": {"conv": 0.0, "pointwise": 0.0, "dwconv": 0.0, "fc": 2e6, "other": 1e4}}
    shape = {"rt1": {"conv": 1.0, "pointwise": 0.6, "dwconv": 1.5, "fc": 0.8}, "rt2": {"conv": 0.5, "pointwise": 0.5, "dwconv": 2.0, "fc": 1.2}}
    core = {"Cortex-M4": 1.0, "Cortex-M7": 0.6, "Cortex-M33": 0.8}
    profiles = []
    for i, (rt, c, clock) in enumerate([("rt1", "Cortex-M4", 120), ("rt1", "Cortex-M7", 216), ("rt1", "Cortex-M33", 160),
                                        ("rt2", "Cortex-M4", 80), ("rt2", "Cortex-M7", 280), ("rt2", "Cortex-M33", 100)]):
        k = {cls: 4e-3 * shape[rt][cls] * core[c] / clock for cls in shape[rt]}
        k["other"] = math.exp(np.mean([math.log(v) for v in k.values()]))
        ms = {ref: sum(k[cls] * n[cls] for cls in k) for ref, n in refs.items()}
        if i == 0:
            ms["b"] *= perturb
        profiles.append(BoardProfile(name=f"p{i}", part=f"part{i}", board=f"b{i}", core=c, clock_mhz=clock, runtime=rt,
                                     runtime_name=rt, version="1", variant="", latency_ms=ms,
                                     energy_uj={ref: 30.0 * v for ref, v in ms.items()}))
    return profiles, refs


def test_joint_fit_recovers_a_catalog_that_follows_the_model():
    from nas.calibration import fit_joint

    profiles, refs = _synthetic()
    fit = fit_joint(profiles, refs)["profiles"]
    for name, entry in fit.items():
        for r in entry["refs"].values():
            assert r["fitted_ms"] == pytest.approx(r["published_ms"], rel=0.03)
        assert entry["loo_mean_pct"] < 5
        assert entry["power_mw"] == pytest.approx(30.0, rel=1e-6)
        assert entry["energy_loo_mean_pct"] < 5
        assert entry["power_loo_mean_pct"] == pytest.approx(0, abs=1e-9)  # one power for every model: no power error


def test_the_power_models_own_error_is_left_one_model_out():
    from nas.calibration import fit_joint

    profiles, refs = _synthetic()
    p = profiles[0]
    # one model drawn 50% more power: left out, the mean of the other three (30 mW) prices it 1/1.5 - 1 = -33% off
    profiles[0] = replace(p, energy_uj={**p.energy_uj, "b": 1.5 * p.energy_uj["b"]})
    entry = fit_joint(profiles, refs)["profiles"]["p0"]
    assert entry["power_loo_max_pct"] == pytest.approx(100 / 3, rel=0.01)
    # the other three each see a mean of two 30 mW and one 45 mW draw: (45 * 30 * 30) ** (1/3) / 30 - 1 = 14.5%
    assert entry["power_loo_mean_pct"] == pytest.approx((100 / 3 + 3 * 100 * (1.5 ** (1 / 3) - 1)) / 4, rel=0.01)


def test_leave_one_out_exposes_a_result_the_model_cannot_explain():
    from nas.calibration import fit_joint

    fits = {perturb: fit_joint(*_synthetic(perturb=perturb))["profiles"] for perturb in (1.6, 3.0)}
    fit = fits[1.6]
    loo = fit["p0"]["refs"]["b"]
    assert loo["loo_ms"] / loo["published_ms"] < 0.8  # predicted without it, the 60% outlier shows
    assert fit["p0"]["loo_max_pct"] > 20 and fit["p3"]["loo_max_pct"] < fit["p0"]["loo_max_pct"]
    # left out means left out: the row's own published time (60% or 200% over the model) does not move
    # its prediction, though it pulls the in-sample fit towards it; and the stated error is that prediction's
    far = fits[3.0]["p0"]["refs"]["b"]
    assert far["loo_ms"] == pytest.approx(loo["loo_ms"], rel=1e-4)
    assert far["fitted_ms"] > 1.1 * loo["fitted_ms"]
    assert fit["p0"]["loo_max_pct"] == pytest.approx(100 * abs(loo["loo_ms"] / loo["published_ms"] - 1))


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory) -> bytes:
    from nas.candidate import convert
    from nas.spec import build_model
    from helpers import TINY_SPEC

    model = build_model(TINY_SPEC, 1, 10)
    x = np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 1)).astype(np.float32)
    return convert(model, "int8", x)


def test_a_board_prices_a_model_with_its_error_and_energy(tiny_int8):
    from nas.latency import load_device

    board = load_device("cortex-m33-ra6m4-tflm-cmsisnn-r0.7")  # priced from the M33's CMSIS-NN counts
    m33 = board.predict(tiny_int8)
    m0 = load_device("cortex-m0p-stm32g0b1-hale-1.0.175").predict(tiny_int8)
    assert m33.runs and m33.unit == "ms" and m33.error_pct is not None and m33.error_max_pct >= m33.error_pct
    entry = board.artifact["profiles"][board.name]
    # a new model is priced with the catalog's error for it, compounded with the error of the base's kernel
    # model (the M33's Arm counts, predicted) on whole networks outside the search spaces, a file's case
    base = load_device(board.base_device).artifact["validation"]["all_outside_spaces"]
    assert m33.error_pct == pytest.approx(100 * ((1 + entry["unseen_mean_pct"] / 100) * (1 + base["mape_pct"] / 100) - 1))
    assert m33.error_max_pct == pytest.approx(100 * ((1 + entry["unseen_max_pct"] / 100) * (1 + base["max_error_pct"] / 100) - 1))
    # energy is power x predicted latency: its error for a new model is the latency error compounded with the
    # power model's own, never below the latency error (the catalog's leave-one-out energy error is smaller)
    assert m33.energy_uj > 0 and entry["power_loo_mean_pct"] > 0
    assert m33.energy_error_pct == pytest.approx(100 * ((1 + m33.error_pct / 100) * (1 + entry["power_loo_mean_pct"] / 100) - 1))
    assert m33.energy_error_max_pct == pytest.approx(
        100 * ((1 + m33.error_max_pct / 100) * (1 + entry["power_loo_max_pct"] / 100) - 1))
    assert m33.error_pct < m33.energy_error_pct < m33.energy_error_max_pct and m33.error_max_pct < m33.energy_error_max_pct
    assert m33.energy_error_pct > entry["energy_loo_mean_pct"]
    assert m0.energy_uj is None and m0.energy_error_pct is None and m0.energy_error_max_pct is None  # Bosch published none
    assert m0.latency_ms > 3 * m33.latency_ms  # a 64 MHz Cortex-M0+ against a 200 MHz Cortex-M33


def test_predict_states_energy_no_more_precise_than_the_latency_it_multiplies(tmp_path):
    from helpers import TINY_SPEC

    arch = tmp_path / "arch.json"
    arch.write_text(TINY_SPEC.to_json())
    result = run("predict", "--device", "cortex-m33-stm32u575-xcubeai-7.1", str(arch), "--json")
    assert result.returncode == 0, result.stderr
    (p,) = json.loads(result.stdout)
    assert p["runs"] and p["energy_uj"] > 0
    assert p["error_pct"] <= p["energy_error_pct"] <= p["energy_error_max_pct"] and p["error_max_pct"] <= p["energy_error_max_pct"]
    text = run("predict", "--device", "cortex-m33-stm32u575-xcubeai-7.1", str(arch)).stdout
    assert f"max {p['energy_error_max_pct']:.0f}%" in text and "uJ (error: mean" in text


def test_runs_on_says_where_a_model_fits(tiny_int8):
    from nas.latency import APP_RESERVE, runs_on

    rows = {r["device"]: r for r in runs_on(tiny_int8, arena_bytes=200 * 1024)}
    assert rows["cortex-m0p-stm32g0b1-hale-1.0.175"]["fits"] is False  # 144 KB SRAM, a quarter kept back
    assert "arena 200.0 KB" in rows["cortex-m0p-stm32g0b1-hale-1.0.175"]["why"]
    assert rows["cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1"]["fits"] is True  # 640 KB
    assert rows["cortex-m33-stm32u385-xcubeai-10.2"]["fits"] is None  # memory not known
    assert all(r["latency_ms"] > 0 for r in rows.values())
    # the reserve is what separates fitting from not: an arena just under a board's SRAM does not fit
    g0 = 144 * 1024
    assert {r["device"]: r["fits"] for r in runs_on(tiny_int8, arena_bytes=int(0.9 * g0))}["cortex-m0p-stm32g0b1-hale-1.0.175"] is False
    assert {r["device"]: r["fits"] for r in runs_on(tiny_int8, arena_bytes=int((1 - APP_RESERVE) * g0) - 64)}[
        "cortex-m0p-stm32g0b1-hale-1.0.175"] is True


def test_a_board_that_runs_the_linked_firmware_is_judged_on_the_whole_image(tiny_int8):
    from nas.latency import load_device, runs_on

    l4r5 = "cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1"  # TFLite Micro 2.3.1 with CMSIS-NN on a Cortex-M4 (640 KB SRAM)
    assert load_device(l4r5).arm_build == ("cortex-m4", "cmsisnn")
    assert load_device("cortex-m33-ra6m4-tflm-cmsisnn-r0.7").arm_build == ("cortex-m33", "cmsisnn")
    firmware = {"core": "cortex-m4", "kernels": "cmsisnn", "flash_bytes": 100 * 1024, "ram_bytes": 600 * 1024}
    rows = {r["device"]: r for r in runs_on(tiny_int8, 20 * 1024, firmware)}
    assert rows[l4r5]["fits"] is False and "firmware 600.0 KB > 480 KB of SRAM" in rows[l4r5]["why"]
    assert rows[l4r5]["memory"].startswith("the whole firmware, linked for the cortex-m4")
    # the same firmware says nothing of another core's build, or of a runtime that is not TFLite Micro
    for other in ("cortex-m33-ra6m4-tflm-cmsisnn-r0.7", "cortex-m4-stm32l4r5-xcubeai-10.2"):
        assert rows[other]["memory"].startswith("the model and TFLite Micro's arena"), other
    assert "standing in for" in rows["cortex-m4-stm32l4r5-xcubeai-10.2"]["memory"]
    # nor a reference-kernel build of the board's own core
    reference = {r["device"]: r for r in runs_on(tiny_int8, 20 * 1024, {**firmware, "kernels": "reference"})}
    assert not reference[l4r5]["memory"].startswith("the whole firmware")
    plain = {r["device"]: r for r in runs_on(tiny_int8, 20 * 1024)}
    assert plain[l4r5]["fits"] is True and not plain[l4r5]["memory"].startswith("the whole firmware")


def test_a_board_without_memory_budgets_gives_its_own(tmp_path):
    from nas.search import load_study

    study = tmp_path / "s.yaml"
    study.write_text("name: s\ndataset: digits\nspace: mobilenet_tiny\ndevice: cortex-m33-ra6m4-tflm-cmsisnn-r0.7\n"
                     "budgets: {max_latency_ms: 50}\n")
    config = load_study(study)
    assert config.budgets.max_size_kb == pytest.approx(768) and config.budgets.max_ram_kb == pytest.approx(192)
    assert load_study(study, max_ram_kb=32).budgets.max_ram_kb == 32


def test_devices_fits_lists_the_boards(tmp_path, tiny_int8):
    path = tmp_path / "m.tflite"
    path.write_bytes(tiny_int8)
    result = run("devices", "--fits", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["arena_source"].startswith("measured") and data["arena_bytes"] > 0
    assert sum(r["fits"] is True for r in data["boards"]) >= 10
    assert run("devices", "--fits", str(tmp_path / "none.tflite")).returncode == 2


def test_every_class_is_priced_and_the_profiles_match_the_catalog():
    """No kernel class is priced at nothing (the reference models mix depthwise and pointwise alike, so
    an unconstrained fit can move one into the other), and the device files say what the catalog does."""
    import yaml

    from nas.catalog import catalog_dirs
    from nas.latency import CATALOG_ARTIFACT, load_artifact

    artifact = load_artifact(CATALOG_ARTIFACT)
    for name, entry in artifact["profiles"].items():
        factors = entry["ms_per_instruction"].values()
        assert max(factors) / min(factors) < 30, (name, entry["ms_per_instruction"])
    files = {p.stem: yaml.safe_load(p.read_text()) for p in catalog_dirs("devices")[0].glob("*.yaml")}
    boards = {n: d for n, d in files.items() if d.get("latency_model") == CATALOG_ARTIFACT}
    assert set(boards) == set(artifact["profiles"])
    for name, data in boards.items():
        assert ("MISSES" in data["calibration"]) == (artifact["profiles"][name]["loo_max_pct"] > 30), name


def test_a_changed_base_model_invalidates_the_boards_priced_from_it(tiny_int8, tmp_path, monkeypatch):
    """A user's catalog folder (NAS_CATALOG_DIR) whose board catalog was fitted on other coefficients of
    the Cortex-M33's CMSIS-NN kernel model: its boards refuse, the other cores' boards still price."""
    from nas.latency import CATALOG_ARTIFACT, load_artifact, load_device

    shipped = load_artifact(CATALOG_ARTIFACT)
    assert load_device("cortex-m33-stm32u575-hale-1.0").base_device == "cortex-m33-qemu-cmsisnn"
    stale = {**shipped, "base_devices": {**shipped["base_devices"], "cortex-m33-qemu-cmsisnn": "0" * 16}}
    (tmp_path / "latency_models").mkdir()
    (tmp_path / "latency_models" / f"{CATALOG_ARTIFACT}.json").write_text(json.dumps(stale))
    monkeypatch.setenv("NAS_CATALOG_DIR", str(tmp_path))
    prediction = load_device("cortex-m33-stm32u575-hale-1.0").predict(tiny_int8)
    assert not prediction.runs and "nas calibrate --boards" in prediction.reason
    assert load_device("cortex-m4-stm32l4r5-hale-1.0").predict(tiny_int8).runs
    assert load_device("cortex-m33-stm32u575-xcubeai-10.2").predict(tiny_int8).runs  # priced from the host's
    monkeypatch.delenv("NAS_CATALOG_DIR")
    assert load_device("cortex-m33-stm32u575-hale-1.0").predict(tiny_int8).runs


def test_energy_needs_a_board_that_published_it(tmp_path):
    from nas.errors import ConfigError
    from nas.search import Budgets, load_study

    study = tmp_path / "s.yaml"
    study.write_text("name: s\ndataset: digits\nspace: mobilenet_tiny\ndevice: cortex-m0p-stm32g0b1-hale-1.0.175\n")
    with pytest.raises(ConfigError, match="no energy model"):
        load_study(study, max_energy_uj=100)
    config = load_study(study, device="cortex-m33-stm32u575-xcubeai-10.2", max_energy_uj=100)
    assert config.budgets.max_energy_uj == 100
    budgets = Budgets(max_energy_uj=100)
    assert budgets.violations(1, 1, 5.0, None)["energy"] == 1.0  # energy not priced: a violation, not a pass
    assert budgets.violations(1, 1, 5.0, 150.0)["energy"] == pytest.approx(0.5)


def test_the_readmes_board_figures_are_the_shipped_catalogs():
    """README.md quotes the catalog's errors: they must be the shipped artifact's, to the digit shown
    (a refit that moves them fails here until the README says the new figures)."""
    from pathlib import Path

    from nas.latency import CATALOG_ARTIFACT, load_artifact

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    artifact = load_artifact(CATALOG_ARTIFACT)
    v, l4r5 = artifact["validation"], artifact["profiles"]["cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1"]
    quoted = [f"latency model: {l4r5['loo_mean_pct']:.1f}% mean, {l4r5['loo_max_pct']:.1f}% largest leave-one-model-out",
              f"{v['unseen_mean_pct']:.1f}% mean over the catalog, up to {v['unseen_max_pct']:.1f}%",
              f"{v['energy_unseen_mean_pct']:.1f}% mean over the {v['energy_profiles']} boards with energy, "
              f"up to {v['energy_unseen_max_pct']:.1f}%"]
    flat = " ".join(readme.split())
    missing = [q for q in quoted if q not in flat]
    assert not missing, f"README.md does not quote the shipped catalog: {missing}"


def test_each_board_is_priced_from_its_cores_arm_counts():
    from nas.calibration import HOST_SHAPED
    from nas.latency import CATALOG_ARTIFACT, board_devices, load_artifact

    artifact = load_artifact(CATALOG_ARTIFACT)
    boards = board_devices()
    for board in boards:
        assert artifact["profiles"][board.name]["base_device"] == board.base_device
        if board.core == "Cortex-M85":  # no Arm build emulates Helium yet: the host's instructions, said so
            assert board.base_device == "host-tflm-icount" and "no Arm build emulates this core" in board.calibration
            continue
        if board.runtime_family in HOST_SHAPED:  # kernels of their own, whose results follow the host's proportions
            assert board.base_device == "host-tflm-icount" and "more closely than CMSIS-NN's" in board.calibration
            continue
        core, kernels = board.arm_build
        assert board.base_device == f"{core}-qemu-{kernels}" and board.base_device in artifact["counted"]
        assert f"Arm instructions of TFLite Micro with" in board.calibration
    # no published board runs TFLite Micro's reference kernels: MLPerf Tiny's v0.5 reference submission
    # builds TFLite Micro 2.3.1 with CMSIS-NN
    assert not [b.name for b in boards if b.runtime_family == "tflm"]
    assert {b.runtime_family for b in boards if b.base_device in artifact["counted"]} >= {"tflm-cmsisnn", "hale", "microtvm"}
    # each Arm base's kernel model prices the four reference models within 5% of their counts
    assert set(artifact["kernel_model_check_pct"]) == set(artifact["counted"])
    assert all(abs(x) < 5 for per_ref in artifact["kernel_model_check_pct"].values() for x in per_ref.values())


def test_a_board_prices_its_base_classes_and_states_the_error_of_the_case(tiny_int8):
    from helpers import TINY_SPEC
    from nas.latency import class_instructions, kernels_from_spec, kernels_from_tflite, load_device

    def compound(a, b):
        return 100 * ((1 + a / 100) * (1 + b / 100) - 1)

    board = load_device("cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1")
    entry = board.artifact["profiles"][board.name]
    base = load_device(board.base_device).artifact
    fitted, held_out = base["modes"]["int8"], base["validation"]
    on_file, on_spec = board.predict(tiny_int8), board.predict(TINY_SPEC, 1, 10)
    for prediction, kernels in ((on_file, kernels_from_tflite(tiny_int8)), (on_spec, kernels_from_spec(TINY_SPEC, 1, 10))):
        counts = class_instructions(kernels, fitted["coef"], base["feature_set"])
        assert prediction.latency_ms == pytest.approx(sum(entry["ms_per_instruction"][c] * counts[c] for c in counts))
    # a spec is a search-space model; a file a whole network outside the spaces: each its kernel model's held-out error
    assert on_spec.error_pct == pytest.approx(compound(entry["unseen_mean_pct"], held_out["all_search_spaces"]["mape_pct"]))
    assert on_file.error_pct == pytest.approx(compound(entry["unseen_mean_pct"], held_out["all_outside_spaces"]["mape_pct"]))
    assert on_file.error_max_pct == pytest.approx(compound(entry["unseen_max_pct"], held_out["all_outside_spaces"]["max_error_pct"]))
    # the Cortex-M85 was fitted on the host model's own predictions of the reference models: its error alone
    m85 = load_device("cortex-m85-ra8d1-tflm-helium-r1.2")
    assert m85.predict(tiny_int8).error_pct == pytest.approx(m85.artifact["profiles"][m85.name]["unseen_mean_pct"])
