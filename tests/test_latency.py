"""Kernels, instruction counting, latency models, device predictions (issue 7)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import TINY_SPEC
from nas.calibration import fit_mode, fit_regressor
from nas.errors import UnknownNameError
from nas.latency import (Buffer, features, kernels_from_spec, kernels_from_tflite, liveness_bytes, load_device,
                         model_mode, planned_head_bytes, tflm_buffers)
from nas.spec import QUANT_MODES

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
NAS = [sys.executable, "-m", "nas.cli"]


def run(*args, env_extra=None):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", **(env_extra or {})}
    return subprocess.run([*NAS, *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def converted():
    """TINY_SPEC converted in every mode, with realistic statistics."""
    from nas.backend import keras
    from nas.calibration import settle
    from nas.candidate import convert
    from nas.spec import build_model

    rng = np.random.default_rng(0)
    out = {}
    for mode in QUANT_MODES:
        keras.backend.clear_session()
        spec = TINY_SPEC.replace(quantization=mode)
        model = build_model(spec, 1, 10, dropout=0.0)
        x = rng.uniform(0, 1, (16, 16, 16, 1)).astype(np.float32)
        settle(model, x, rng)
        out[mode] = convert(model, mode, x)
    return out


@pytest.fixture(scope="module")
def outside_model():
    """A model no search space makes: valid padding, non-square kernel, max pooling, flatten."""
    from nas.backend import keras
    from nas.calibration import settle
    from nas.candidate import convert

    L = keras.layers
    keras.backend.clear_session()
    inputs = keras.Input((20, 12, 1))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, (5, 3), 1, "valid")(inputs)))
    x = L.MaxPooling2D(2)(x)
    x = L.Dense(4, activation="softmax")(L.Dense(16, activation="relu")(L.Flatten()(x)))
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(1)
    data = rng.uniform(0, 1, (16, 20, 12, 1)).astype(np.float32)
    settle(model, data, rng)
    return convert(model, "int8", data)


@pytest.mark.parametrize("mode", QUANT_MODES)
def test_spec_kernels_match_the_converted_model(converted, mode):
    for priced_by in ("kernel", "xnnpack"):
        from_spec = features(kernels_from_spec(TINY_SPEC.replace(quantization=mode), 1, 10), priced_by)
        from_file = features(kernels_from_tflite(converted[mode]), priced_by)
        assert from_spec == from_file, priced_by
    assert model_mode(converted[mode]) == mode


def test_xnnpack_tiles_follow_the_micro_kernels_litert_runs():
    from nas.latency import Kernel, xnnpack_features

    # 1x1 stride-1 float convolution, 144 pixels x 24 channels from 16: XNNPACK's 10x8 GEMM
    # (24 is no multiple of 16), 15 row tiles x 3 column blocks, 16 inner steps each
    conv = Kernel("conv", "float32", (144 * 16,), 144 * 24, 144 * 24 * 16, 144 * 24, 16 * 24, "CONV_2D", channels=24, window=1)
    assert xnnpack_features(conv) == {"xnn-f32-gemm10x8:rows": 15, "xnn-f32-gemm10x8:blocks": 45,
                                      "xnn-f32-gemm10x8:steps": 720, "conv:n": 1.0}
    # int8, 3x3 stride 2: the 3x8c8 indirect GEMM, inner steps over taps x ceil(16 / 8)
    conv3 = Kernel("conv", "int8", (144 * 16,), 36 * 32, 36 * 32 * 9 * 16, 36 * 32 * 9, 9 * 16 * 32, "CONV_2D",
                   channels=32, window=9, stride=2)
    assert xnnpack_features(conv3)["xnn-qs8-igemm3x8c8:steps"] == 12 * 4 * 9 * 2
    # a 7x7 depthwise has no depthwise micro-kernel: a grouped GEMM, one group a channel
    dw7 = Kernel("dwconv", "float32", (144 * 24,), 144 * 24, 144 * 24 * 49, 144 * 24 * 49, 49 * 24, "DEPTHWISE_CONV_2D",
                 channels=24, window=49)
    assert xnnpack_features(dw7)["xnn-f32-igemm10x8:rows"] == 24 * 15
    dw3 = dw7._replace(window=9)
    assert xnnpack_features(dw3) == {"xnn-f32-dw9p16c:px": 144, "xnn-f32-dw9p16c:pxc": 288, "dwconv:n": 1.0}
    # int16 activations never reach XNNPACK
    assert xnnpack_features(Kernel("conv", "int16", (1,), 8, 8, 8, 8, "CONV_2D", channels=8, window=1)) is None


def _tile(features: dict) -> str:
    (name,) = {key.split(":")[0] for key in features if key.startswith("xnn-")}
    return name


def test_xnnpack_picks_its_8_wide_float_kernels_as_its_own_rules_do():
    from nas.latency import Kernel, xnnpack_features

    def conv(channels, window=1, stride=1, pixels=64):
        return Kernel("conv", "float32", (pixels * 8,), pixels * channels, pixels * channels * 8 * window,
                      pixels * channels * window, 8 * channels * window, "CONV_2D", channels=channels, window=window,
                      stride=stride)

    # a 1x1 GEMM leaves the 16-wide kernel below 16 channels, or where it would waste more lanes than
    # the 8-wide (callgrind: 12 and 20 channels ran 10x8; 28, 42 and 44 ran 6x16, as equal waste keeps it)
    assert [_tile(xnnpack_features(conv(n))) for n in (12, 20, 28, 36, 42, 44, 48)] == [
        "xnn-f32-gemm10x8", "xnn-f32-gemm10x8", "xnn-f32-gemm6x16", "xnn-f32-gemm10x8", "xnn-f32-gemm6x16",
        "xnn-f32-gemm6x16", "xnn-f32-gemm6x16"]
    assert _tile(xnnpack_features(conv(42)._replace(family="fc", out=42, macs=42 * 8, weights=42 * 8))) == "xnn-f32-fc1x16"
    # an indirect GEMM (3x3) only below 16 channels (DenseNet's 12-channel growth convolutions)
    assert [_tile(xnnpack_features(conv(n, 9))) for n in (8, 12, 16, 24)] == [
        "xnn-f32-igemm10x8", "xnn-f32-igemm10x8", "xnn-f32-igemm5x16", "xnn-f32-igemm5x16"]


def test_a_fully_connected_layer_of_several_rows_runs_the_gemm_one_row_the_1_row_kernel():
    from nas.latency import Kernel, xnnpack_features

    def fc(rows, dtype="float32"):
        return Kernel("fc", dtype, (rows * 64,), rows * 32, rows * 32 * 64, 0, 32 * 64, "FULLY_CONNECTED", channels=32,
                      window=1)

    assert _tile(xnnpack_features(fc(1))) == "xnn-f32-fc1x16"
    assert _tile(xnnpack_features(fc(20))) == "xnn-f32-gemm6x16"  # callgrind: 6x16 at 3 and at 20 rows
    assert xnnpack_features(fc(20))["xnn-f32-gemm6x16:rows"] == 4
    assert _tile(xnnpack_features(fc(3, "int8"))) == "xnn-qs8-gemm3x8c8"
    assert _tile(xnnpack_features(fc(1, "int8"))) == "xnn-qs8-fc1x8c8"


def test_xnnpack_pads_row_by_row_and_prices_padv2_apart():
    from nas.latency import Kernel, xnnpack_features

    # a causal 1-D pad, (1, 98, 32) int8 to (1, 100, 32): callgrind ran XNNPACK's pad once a row, 100 rows
    pad = Kernel("pad", "int8", (98 * 32,), 100 * 32, op="PAD", channels=32)
    assert xnnpack_features(pad) == {"pad:n": 1.0, "pad:in": 3136.0, "pad:out": 3200.0, "pad:px": 100.0}
    assert set(xnnpack_features(pad._replace(op="PADV2"))) == {"pad/v2:n", "pad/v2:in", "pad/v2:out", "pad/v2:px"}
    assert xnnpack_features(pad._replace(dtype="int16")) is None  # int16x8: TFLite's own pad, by elements


def test_xnnpack_runs_a_strided_transposed_convolution_a_pixel_a_call():
    from nas.latency import Kernel, xnnpack_features

    def deconv(channels, stride, window=9, in_pixels=256, k_in=16, dtype="float32"):
        out_pixels = in_pixels * stride * stride
        return Kernel("transpose_conv", dtype, (in_pixels * k_in,), out_pixels * channels, in_pixels * k_in * window * channels,
                      weights=channels * window * k_in, op="TRANSPOSE_CONV", channels=channels, window=window, stride=stride)

    # callgrind, 16x16x16 -> 32x32x16, 3x3 stride 2: 1,024 calls of the 1x16 kernel, one an output pixel
    f = xnnpack_features(deconv(16, 2))
    assert f == {"xnn-f32-subconv1x16:rows": 1024, "xnn-f32-subconv1x16:blocks": 1024,
                 "xnn-f32-subconv1x16:taps": 256 * 9, "xnn-f32-subconv1x16:steps": 256 * 9 * 16, "transpose_conv:n": 1.0}
    assert _tile(xnnpack_features(deconv(8, 2))) == "xnn-f32-subconv1x8"  # 8 channels: the 1x8 kernel (callgrind)
    assert xnnpack_features(deconv(32, 2))["xnn-f32-subconv1x16:taps"] == 2 * 256 * 9  # two 16-wide blocks a call
    # stride 1 runs as a convolution's indirect GEMM (callgrind: 10x8 for 4 channels of 6x6)
    assert _tile(xnnpack_features(deconv(4, 1, in_pixels=36, k_in=32))) == "xnn-f32-igemm10x8"
    # int8 the same way, with the 1x8c8 kernel (callgrind: 5,376 calls for 16x16, 32x32 and 64x64 outputs)
    q = xnnpack_features(deconv(16, 2, dtype="int8"))
    assert q["xnn-qs8-subconv1x8c8:rows"] == 1024 and q["xnn-qs8-subconv1x8c8:steps"] == 2 * 256 * 9 * 2
    assert xnnpack_features(deconv(16, 2, dtype="int16")) is None  # int16x8: TFLite's own kernel, by shape


def test_xnnpack_elides_a_reshape_between_its_own_operators():
    from nas.latency import Kernel, xnnpack_features

    reshape = Kernel("reshape", "float32", (3136,), 3136, op="RESHAPE")
    assert xnnpack_features(reshape) == {"reshape/internal:n": 1.0}
    assert xnnpack_features(reshape._replace(edge=True)) is None  # a graph input or output is copied: by elements
    assert xnnpack_features(reshape._replace(dtype="int16")) is None


def test_the_held_out_split_does_not_move_when_samples_are_added():
    from nas.calibration import held_out_split

    names = [f"op-conv-{i}" for i in range(400)]
    train, held = held_out_split(names, 0)
    assert 0.18 < len(held) / len(names) < 0.32 and set(train).isdisjoint(held) and len(train) + len(held) == 400
    more = names[:150] + [f"op-split-{i}" for i in range(120)] + names[150:]
    _, held_more = held_out_split(more, 0)
    assert {more[i] for i in held_more if more[i] in names} == {names[i] for i in held}
    assert set(held_out_split(names, 1)[1]) != set(held)  # the seed draws another split


def test_kernels_of_a_model_outside_the_search_space(outside_model):
    kernels = kernels_from_tflite(outside_model)
    families = [k.family for k in kernels]
    assert families[:2] == ["conv", "maxpool"] and "fc" in families and "reshape" in families
    conv = kernels[0]
    assert conv.macs == 16 * 10 * 8 * 5 * 3 * 1 and conv.dtype == "int8"


def test_not_a_flatbuffer_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    result = run("predict", "--device", "host-tflm-icount", str(bad))
    assert result.returncode == 2 and "not a TFLite flatbuffer" in result.stderr


@pytest.mark.parametrize("which", ["search-space int8", "outside int8", "search-space float32"])
def test_planned_head_is_the_arena_head_tflite_micro_reports(converted, outside_model, which):
    from nas.measure import tflm_arena

    model = {"search-space int8": converted["int8"], "outside int8": outside_model,
             "search-space float32": converted["float32"]}[which]
    arena = tflm_arena(model)
    assert arena.compatible and arena.head_bytes and arena.tail_bytes
    assert arena.head_bytes + arena.tail_bytes == arena.arena_bytes
    buffers = tflm_buffers(model)
    assert planned_head_bytes(buffers) == arena.head_bytes  # to the byte, not a bound
    assert 0 < liveness_bytes(buffers) <= arena.head_bytes


def test_greedy_planner_places_largest_first_in_the_lowest_gap():
    # B (48 bytes) goes first, at 0; then the 32-byte ones, the later tensor first: D shares 0
    # with B (never alive together), C sits above both at 48, and A, alive with D and C, finds the
    # 16-byte gap between them too small and lands at 80. Liveness would promise 96.
    a, b, c, d = Buffer(32, 0, 2), Buffer(48, 3, 3), Buffer(32, 1, 3), Buffer(32, 2, 2)
    assert liveness_bytes([a, b, c, d]) == 96
    assert planned_head_bytes([a, b, c, d]) == 112
    assert planned_head_bytes([Buffer(20, 0, 0)]) == 32  # 16-byte alignment
    assert planned_head_bytes([]) == 0


def _plain_greedy(buffers) -> int:
    """TFLite Micro's greedy planner written plainly (every placed buffer checked for each new one)."""
    sizes = [(b.size + 15) // 16 * 16 for b in buffers]
    placed = []  # (offset, index), by offset, ties in placement order
    for i in sorted(range(len(buffers)), key=lambda i: (-sizes[i], -i)):
        offset = 0
        for other, j in placed:
            if buffers[j].first > buffers[i].last or buffers[i].first > buffers[j].last:
                continue
            if other - offset >= sizes[i]:
                break
            offset = max(offset, other + sizes[j])
        placed.insert(sum(1 for other, _ in placed if other <= offset), (offset, i))
    return max((offset + sizes[i] for offset, i in placed), default=0)


@pytest.mark.parametrize("by", ["pairs", "region", ""])
def test_greedy_planner_places_as_the_plain_algorithm_does(by):
    # either way of finding what stands in a buffer's way (pairs alive together, or regions placed with equal offsets and ends shared)
    # only meets buffers alive together: it must lay out every case as the plain algorithm does
    rng = np.random.default_rng(7)
    for _ in range(3000):
        steps = int(rng.integers(1, 16))
        buffers = []
        for _ in range(int(rng.integers(0, 24))):
            first = int(rng.integers(0, steps))
            last = min(steps - 1, first + int(rng.integers(0, 3) if rng.random() < 0.8 else rng.integers(0, steps)))
            buffers.append(Buffer(int(rng.choice([16, 32, 48, 100, 256, int(rng.integers(1, 5000))])), first, last))
        assert planned_head_bytes(buffers, by) == _plain_greedy(buffers), buffers


@pytest.mark.parametrize("which", ["search-space", "outside"])
def test_shipped_arena_prediction_is_within_10_percent(converted, outside_model, which):
    from nas.measure import tflm_arena

    model = converted["int8"] if which == "search-space" else outside_model
    predicted = _shipped("host-tflm-icount").predict(model).arena_bytes
    measured = tflm_arena(model).arena_bytes
    assert abs(predicted / measured - 1) <= 0.10, (predicted, measured)


@needs_valgrind
def test_instruction_count_repeats_exactly_and_reports_failures(converted):
    from nas.measure import count_instructions

    models = [converted["int8"], converted["dynamic_int8"], converted["int8"]]
    first = count_instructions(models, "tflm", workers=1)
    assert first[0].instructions and first[0].instructions == first[2].instructions
    assert first[1].instructions is None and first[1].reason  # TFLite Micro runs no hybrid models
    again = count_instructions([converted["int8"]], "tflm")
    assert again[0].instructions == first[0].instructions
    litert = count_instructions([converted["float32"], converted["int8"]], "litert")
    assert all(c.instructions and c.instructions > 10_000 for c in litert)


def test_fit_recovers_an_additive_kernel_cost_and_beats_macs_linear():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(60):
        rows.append({"graph:n": 1.0, "graph:ops": float(rng.integers(5, 40)), "conv:macs": float(rng.integers(1e4, 1e6)),
                     "conv:out": float(rng.integers(1e3, 1e5)), "add:in": float(rng.integers(0, 1e4))})
    truth = {"graph:n": 5000.0, "graph:ops": 300.0, "conv:macs": 2.0, "conv:out": 40.0, "add:in": 3.0}
    y = np.array([sum(truth[k] * r[k] for k in truth) for r in rows])
    model, cv = fit_mode(rows, y)
    assert model.regressor.startswith("kernel-nnls")
    assert cv[model.regressor]["within_5pct"] == 1.0 and cv["macs-linear"]["within_10pct"] < 1.0
    for key, value in truth.items():
        assert model.coef[key] == pytest.approx(value, rel=0.02)
    floor = fit_regressor("macs-linear", rows, y)
    assert floor.predict(rows[0]) > 0
    assert model.unpriced({"conv:macs": 1.0, "softmax:n": 1.0}) == ["softmax"]


@needs_valgrind
def test_calibration_on_a_small_sample_fits_and_round_trips(tmp_path):
    catalog = tmp_path / "catalog"
    for kind in ("devices", "latency_models", "search_spaces"):
        (catalog / kind).mkdir(parents=True)
    for space in Path(__file__).resolve().parents[1].joinpath("search_spaces").glob("*.yaml"):
        shutil.copy(space, catalog / "search_spaces" / space.name)
    (catalog / "devices" / "tiny-icount.yaml").write_text(
        "name: tiny-icount\ndescription: test device\nruntime: tflm\nunit: instructions\nquantization: [int8]\n"
        "latency_source: model\nlatency_model: tiny-icount\nmeasure: icount\ncalibration: test\n")
    env = {"NAS_CATALOG_DIR": str(catalog)}
    result = run("calibrate", "--device", "tiny-icount", "--samples", "10", "--op-samples", "0", "--json", env_extra=env)
    assert result.returncode == 0, result.stderr[-2000:]
    artifact = json.loads((catalog / "latency_models" / "tiny-icount.json").read_text())
    assert artifact["provenance"]["samples"] == 10 and artifact["provenance"]["versions"]["tflite-micro"]
    cv = artifact["cross_validation"]["int8"]  # the regressor kept is the one cross-validation ranked first
    assert artifact["modes"]["int8"]["regressor"] == max(
        cv, key=lambda r: (cv[r]["within_10pct"], cv[r]["spearman"] or 0.0, -cv[r]["mape_pct"]))
    assert artifact["validation"]["int8"]["n"] >= 1 and len(artifact["samples"]) == 10
    spec = tmp_path / "arch.json"
    spec.write_text(TINY_SPEC.replace(quantization="int8").to_json())
    predicted = run("predict", "--device", "tiny-icount", str(spec), "--json", env_extra=env)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert json.loads(predicted.stdout)[0]["instructions"] > 0


def _shipped(name):
    device = load_device(name)
    if device.artifact is None:
        pytest.fail(f"{name} has no shipped latency model (run nas calibrate --device {name})")
    return device


@pytest.mark.parametrize("name", ["host-tflm-icount", "host-litert-icount", "cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1"])
def test_shipped_predictions_are_positive_and_monotone(name):
    device = _shipped(name)
    mode = "int8"
    base = TINY_SPEC.replace(quantization=mode)
    wider = base.replace(stem_channels=32, head_channels=128)
    bigger = base.replace(resolution=32)
    values = [device.predict(s, 1, 10).value for s in (base, wider, bigger)]
    assert values[0] > 0 and values[1] > values[0] and values[2] > values[0]


def test_a_model_outside_the_space_is_predicted_on_a_microcontroller(outside_model, tmp_path):
    path = tmp_path / "outside.tflite"
    path.write_bytes(outside_model)
    _shipped("cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1")
    result = run("predict", "--device", "cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1", str(path), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    (entry,) = json.loads(result.stdout)
    assert entry["path"] == str(path) and entry["runs"] and entry["latency_ms"] > 0


def test_a_mode_the_device_cannot_run_is_reported_not_priced(converted, tmp_path):
    path = tmp_path / "hybrid.tflite"
    path.write_bytes(converted["dynamic_int8"])
    _shipped("host-tflm-icount")
    result = run("predict", "--device", "host-tflm-icount", str(path), "--json")
    assert result.returncode == 0
    (entry,) = json.loads(result.stdout)
    assert entry["runs"] is False and "dynamic_int8" in entry["reason"] and "instructions" not in entry
    text = run("predict", "--device", "host-tflm-icount", str(path))
    assert "not predicted" in text.stdout


@pytest.mark.parametrize(("channels", "classes"), [(0, 10), (-2, 10), (1, 1), (1, -5), (1.5, 10)])
def test_a_spec_without_an_input_channel_or_two_classes_is_refused_not_priced(channels, classes):
    from nas.errors import ConfigError
    from nas.latency import load_device

    # the board does not run TINY_SPEC's float32 either: the input is refused before that answer
    for name in ("host-tflm-icount", "cortex-m33-stm32u575-xcubeai-10.2"):
        with pytest.raises(ConfigError, match="^(in_channels|num_classes): .* is not allowed; expected a whole number"):
            load_device(name).predict(TINY_SPEC, channels, classes)
    with pytest.raises(ConfigError, match="is not allowed"):
        kernels_from_spec(TINY_SPEC, channels, classes)


def test_calibration_refuses_too_few_models_before_any_work():
    from nas.calibration import calibrate_host
    from nas.errors import ConfigError
    from nas.latency import load_device

    device = load_device("host-tflm-icount")
    with pytest.raises(ConfigError, match="count: 7 is not allowed; expected 8 or more"):
        calibrate_host(device, 7)
    with pytest.raises(ConfigError, match="op_samples: -1 is not allowed"):
        calibrate_host(device, 8, op_samples=-1)


def test_unknown_device_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="valid devices") as raised:
        load_device("cortex-m99")
    assert "host-tflm-icount" in raised.value.valid and len(raised.value.valid) >= 25
    result = run("predict", "--device", "cortex-m99", "x.tflite")
    assert result.returncode == 2 and "`nas devices` lists them" in result.stderr
    near = run("predict", "--device", "cortex-m4-stm32l4r5-tlfm-2.3.1", "x.tflite")  # a typo: the closest names
    assert near.returncode == 2 and "closest: cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1" in near.stderr
    with pytest.raises(UnknownNameError) as raised:  # a runtime's name alone: every board and version that runs it
        load_device("xcubeai")
    assert "cortex-m33-stm32u575-xcubeai-10.2" in str(raised.value) and "cortex-m4-stm32l4r5-xcubeai-7.1" in str(raised.value)


def test_a_search_refuses_an_instruction_count_device(tmp_path):
    from nas.errors import ConfigError
    from nas.search import load_study

    with pytest.raises(ConfigError, match="not time"):
        load_study("digits_demo", device="host-tflm-icount")


def test_wallclock_protocol_and_repeatability(converted):
    from nas.measure import measure_wallclock, repeatability

    models = [converted["float32"], converted["int8"], b"garbage"]
    result = measure_wallclock(models, rounds=2, repeats=3)
    assert result.ms[0] > 0 and result.ms[1] > 0 and result.ms[2] is None and result.reasons[2]
    floor = repeatability(models[:2], rounds=2, repeats=3)
    assert floor["n"] == 2 and all(v is not None for v in floor.values())


def test_repeatability_compares_the_two_passes_model_by_model(monkeypatch):
    import nas.measure._timing as timing
    from nas.measure import Wallclock, repeatability

    passes = iter([Wallclock((1.0, 2.0, 4.0, None), ("", "", "", "x"), 2), Wallclock((1.04, 2.3, 4.0, 1.0), ("",) * 4, 2)])
    monkeypatch.setattr(timing, "measure_wallclock", lambda models, seed, **kw: next(passes))
    floor = repeatability([b""] * 4)
    assert floor["n"] == 3  # the model one pass could not time is left out
    assert floor["within_10pct"] == pytest.approx(2 / 3) and floor["within_5pct"] == pytest.approx(2 / 3)
    assert floor["median_abs_diff_pct"] == pytest.approx(4.0)


def test_summed_features_read_any_iterable_of_kernels_once():
    # grouping reads the kernels twice: a generator must give the sums a list does
    from nas.latency import Kernel
    from nas.latency._kernels import summed_features

    kernels = [Kernel("add", "int8", (4, 4), 4, op="ADD"), Kernel("relu", "int8", (4,), 4, op="RELU"),
               Kernel("add", "int8", (8, 8), 8, op="ADD", variant="broadcast", runs=2)]
    listed = summed_features(kernels)
    assert listed["add:n"] == 1.0 and listed["add/broadcast:runs"] == 2.0 and listed["relu:in"] == 4.0
    assert summed_features(k for k in kernels) == listed


def test_replacing_an_extended_fit_with_one_not_extended_warns_with_the_command(tmp_path):
    from nas.calibration import write_artifact

    path = tmp_path / "host-x.json"
    write_artifact(path, {"provenance": {"extended": {"unidirectional_sequence_lstm": "python benchmarks/fused_lstm.py --write"}}})
    with pytest.warns(UserWarning, match=r"extended \(unidirectional_sequence_lstm\).*benchmarks/fused_lstm.py --write"):
        write_artifact(path, {"provenance": {}})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # extended again: no warning
        write_artifact(path, {"provenance": {"extended": {"unidirectional_sequence_lstm": "again"}}})
        write_artifact(path, {"provenance": {"extended": {"unidirectional_sequence_lstm": "again"}}})
