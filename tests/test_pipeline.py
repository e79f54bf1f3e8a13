"""Integration: a real tiny candidate trained on digits, converted in every mode, run in LiteRT
and in the TFLite Micro interpreter."""

import numpy as np
import pytest

from nas.data import load_dataset, prepare
from nas.errors import CandidateFailed
from nas.candidate import TrainConfig, evaluate_candidate, evaluate_modes
from nas.spec import QUANT_MODES, count_params

from helpers import TINY_SPEC

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def all_modes(digits):
    results = evaluate_modes(TINY_SPEC, digits, TrainConfig(epochs=15), QUANT_MODES)
    return {r.spec.quantization: r for r in results}


def test_every_mode_converts_and_is_measured(all_modes):
    for mode, r in all_modes.items():
        assert r.status == "ok", (mode, r.reason)
        assert r.spec.quantization == mode
        assert r.size_bytes == len(r.tflite)
        assert r.host_latency_ms > 0 and r.peak_ram_bytes > 0
        assert r.params == count_params(TINY_SPEC, 1, 10) == 32_106  # the old check, `== 32_882 or > 0`, hid a stale constant


def test_float_model_learned(all_modes):
    assert all_modes["float32"].float_accuracy > 0.9


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic_int8", "int8"])
def test_converted_accuracy_within_two_points_of_float(all_modes, mode):
    r = all_modes[mode]
    assert abs(r.accuracy - r.float_accuracy) <= 0.02, (mode, r.accuracy, r.float_accuracy)


def test_sizes_shrink_with_quantization(all_modes):
    size = {m: r.size_bytes for m, r in all_modes.items()}
    assert size["float32"] > size["float16"] > size["int8"]
    assert size["dynamic_int8"] < size["float16"]


def test_tflm_arena_measured_for_int8_and_refused_for_hybrid(all_modes):
    int8 = all_modes["int8"]
    assert int8.tflm_compatible and int8.peak_ram_source == "tflm_arena"
    assert int8.peak_ram_bytes % 16 == 0
    assert int8.peak_ram_bytes < all_modes["float32"].peak_ram_bytes  # 1-byte against 4-byte activations
    hybrid = all_modes["dynamic_int8"]
    assert hybrid.tflm_compatible is False and "Hybrid" in hybrid.tflm_reason
    assert hybrid.peak_ram_source == "activation_estimate"


def test_arena_is_the_smallest_that_allocates(all_modes):
    from nas.measure import TflmWorker

    model, arena = all_modes["int8"].tflite, all_modes["int8"].peak_ram_bytes
    with TflmWorker(model) as worker:
        assert worker.request("probe", arena)["ok"]
        assert not worker.request("probe", arena - 16)["ok"]


def test_a_crashing_interpreter_is_survived(all_modes):
    """tflite-micro segfaults for some too-small arenas; the worker dies, the caller does not."""
    from nas.measure import TflmWorker

    with TflmWorker(all_modes["int8"].tflite) as worker:
        replies = [worker.request("probe", size) for size in (5000, 7000, 1 << 20)]
    assert not replies[0]["ok"] and not replies[1]["ok"] and replies[2]["ok"]


def test_tflm_and_litert_agree_on_int8(all_modes, digits):
    from nas.measure import litert_predict, tflm_predict

    r = all_modes["int8"]
    x = prepare(digits.x_test[:100], TINY_SPEC.resolution, 1)
    micro = tflm_predict(r.tflite, x, r.peak_ram_bytes)
    lite = litert_predict(r.tflite, x, reference=True)  # the same integer kernels as TFLite Micro
    assert np.mean(micro.argmax(1) == lite.argmax(1)) >= 0.99


def test_pruning_reaches_the_requested_sparsity(digits):
    from nas.candidate import train_candidate

    spec = TINY_SPEC.replace(sparsity=0.5)
    x, x_val = prepare(digits.x_train, 16, 1), prepare(digits.x_val, 16, 1)
    trained = train_candidate(spec, x, digits.y_train, x_val, digits.y_val, 10, TrainConfig(epochs=3, prune_epochs=1))
    for layer in trained.model.layers:
        for weight in layer.weights:
            if weight.name.endswith("/kernel:0"):  # conv and dense; tfmot leaves depthwise kernels dense
                assert abs(float((weight.numpy() == 0).mean()) - 0.5) <= 0.02, weight.name
    assert 0.4 <= trained.weight_sparsity <= 0.5
    assert not any("prune" in layer.name for layer in trained.model.layers)  # wrappers stripped


def test_a_failing_candidate_is_a_result_not_a_crash(digits, monkeypatch):
    import nas.candidate._convert as conversion  # fault injection: the converter fails

    def broken(*args, **kwargs):
        raise CandidateFailed("conversion", "int16x8: simulated converter failure")

    monkeypatch.setattr(conversion, "convert", broken)
    r = evaluate_candidate(TINY_SPEC, digits, TrainConfig(epochs=1))
    assert r.status == "failed" and r.failed_stage == "conversion" and "simulated" in r.reason
    assert r.accuracy is None and r.float_accuracy is not None


def test_unallocatable_model_is_reported_with_the_reason():
    from nas.measure import tflm_arena

    arena = tflm_arena(b"\x00" * 64)  # not a flatbuffer model: nothing can run it
    assert arena.compatible is False and arena.reason
    with pytest.raises(CandidateFailed, match="litert"):
        from nas.measure import litert_predict

        litert_predict(b"\x00" * 64, np.zeros((1, 16, 16, 1), np.float32))
