"""What a runtime cannot run (`nas/latency/_runtimes.py`): for each rule, a model that breaks it is
refused by name and really fails in the runtime, and its twin that keeps it is priced and runs."""

from __future__ import annotations

import numpy as np
import pytest

from nas.measure import invokes  # whether the runtime runs a model at all, in a process of its own

DEVICE = {"tflm": "host-tflm-icount", "litert": "host-litert-icount"}


def _op_model(op: str, mode: str, io: str = "int8") -> bytes:
    from nas.calibration import build_op_model, settle
    from nas.candidate import convert

    rng = np.random.default_rng(1234)
    model, xs = build_op_model(op, rng)
    settle(model, xs if len(xs) > 1 else xs[0], rng, steps=2)
    return convert(model, mode, xs if len(xs) > 1 else xs[0], io_type=io, batch_size=1)


@pytest.mark.parametrize("op, runtime, reason", [
    ("SPACE_TO_BATCH_ND/gated", "tflm",
     "TFLite Micro has no kernel for BATCH_TO_SPACE_ND on int16, SPACE_TO_BATCH_ND on int16 (it fails to run)"),
    ("REDUCE_MAX", "tflm", "TFLite Micro has no kernel for REDUCE_MAX on int16 (it fails to run)"),
    ("SQUARED_DIFFERENCE/broadcast", "litert", "LiteRT has no kernel for SQUARED_DIFFERENCE on int16 (it fails to run)"),
    ("PADV2", "tflm", "TFLite Micro's PADV2 fails to prepare: its pad value is float32, its input int16"),
    ("PADV2", "litert", "LiteRT's PADV2 fails to prepare: its pad value is float32, its input int16"),
])
def test_a_kernel_without_code_for_the_model_s_types_is_refused_and_fails_in_the_runtime(op, runtime, reason):
    from nas.latency import load_device

    device = load_device(DEVICE[runtime])
    int16, int8 = _op_model(op, "int16x8"), _op_model(op, "int8")
    p = device.predict(int16)
    assert not p.runs and p.reason == reason
    assert not invokes(int16, runtime)
    assert device.predict(int8).runs and invokes(int8, runtime)  # the int8 twin: priced, and it runs


#: A tensor op between two dense layers, for the kernels TFLite Micro has only for some types.
_LAMBDAS = {
    "EXP": lambda tf: tf.exp, "LOG": lambda tf: (lambda t: tf.math.log(tf.abs(t) + 1.0)),
    "SQRT": lambda tf: (lambda t: tf.sqrt(tf.abs(t) + 1.0)),
    "GATHER": lambda tf: (lambda t: tf.gather(t, [3, 1, 0, 2, 7, 6, 5, 4], axis=-1)),
    "MIRROR_PAD": lambda tf: (lambda t: tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")),
    "REDUCE_MIN": lambda tf: (lambda t: tf.reduce_min(t, -1, keepdims=True) + t),
    "ARG_MAX": lambda tf: (lambda t: tf.cast(tf.argmax(t, -1), tf.float32)[..., None] + t),
}


def _lambda_model(op: str, mode: str) -> bytes:
    from nas.backend import keras, tf
    from nas.candidate import convert

    L = keras.layers
    inputs = keras.Input((4, 4, 8), batch_size=1)
    model = keras.Model(inputs, L.Dense(4)(L.Lambda(_LAMBDAS[op](tf))(L.Dense(8)(inputs))))
    x = np.random.default_rng(0).normal(size=(16, 4, 4, 8)).astype(np.float32)
    return convert(model, mode, x, io_type="float32" if mode == "float32" else "int8", batch_size=1)


@pytest.mark.parametrize("op, mode, reason", [
    ("EXP", "int8", "TFLite Micro has no kernel for EXP on int8 (it fails to run)"),
    ("LOG", "int8", "TFLite Micro has no kernel for LOG on int8 (it fails to run)"),
    ("SQRT", "int8", "TFLite Micro has no kernel for SQRT on int8 (it fails to run)"),
    ("EXP", "int16x8", "TFLite Micro has no kernel for EXP on int16 (it fails to run)"),
    ("LOG", "int16x8", "TFLite Micro has no kernel for LOG on int16 (it fails to run)"),
    ("GATHER", "int16x8", "TFLite Micro has no kernel for GATHER on int16 (it fails to run)"),
    ("MIRROR_PAD", "int16x8", "TFLite Micro has no kernel for MIRROR_PAD on int16 (it fails to run)"),
    ("REDUCE_MIN", "int16x8", "TFLite Micro has no kernel for REDUCE_MIN on int16 (it fails to run)"),
    ("ARG_MAX", "int8", "TFLite Micro's ARG_MAX writes only int32 indices; this model asks for int64"),
])
def test_a_kernel_tflite_micro_has_only_for_other_types_is_refused_there_alone(op, mode, reason):
    from nas.latency import load_device

    data = _lambda_model(op, mode)
    p = load_device("host-tflm-icount").predict(data)
    assert not p.runs and p.reason == reason
    assert not invokes(data, "tflm")
    assert load_device("host-litert-icount").predict(data).runs and invokes(data, "litert")
    if op != "ARG_MAX":  # the float twin runs on TFLite Micro and is priced
        twin = _lambda_model(op, "float32")
        assert load_device("host-tflm-icount").predict(twin).runs and invokes(twin, "tflm")


def _difference(kind: str, gap: float):
    """a + b (or a - b) of two dense layers that nearly cancel: the result's range is `gap` of theirs,
    so its quantization scale is that much finer than its inputs'."""
    from nas.backend import keras

    L = keras.layers
    inputs = keras.Input((16,), batch_size=1)
    a, b = L.Dense(16, name="a")(inputs), L.Dense(16, name="b")(inputs)
    model = keras.Model(inputs, L.Dense(4)(L.Add()([a, b]) if kind == "add" else L.Subtract()([a, b])))
    w = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32) * 0.1
    sign = -1.0 if kind == "add" else 1.0
    model.get_layer("a").set_weights([w, np.full(16, 50.0, np.float32)])
    model.get_layer("b").set_weights([sign * w * (1 + gap), np.full(16, sign * 50.0, np.float32)])
    return model


@pytest.mark.parametrize("kind, mode, gap, refused_by", [
    ("add", "int8", 1e-5, {"tflm", "litert"}),  # output scale under the inputs' / 2^19: both ADD kernels abort
    ("add", "int8", 1e-3, set()),
    ("sub", "int16x8", 1e-3, {"tflm"}),  # under / 2^14: TFLite Micro's SUB aborts; LiteRT's checks only its inputs
    ("add", "int16x8", 1e-3, {"tflm", "litert"}),
])
def test_an_add_or_sub_whose_rescaling_aborts_its_kernel_is_refused(kind, mode, gap, refused_by):
    from nas.candidate import convert
    from nas.latency import load_device

    x = np.random.default_rng(1).normal(size=(32, 16)).astype(np.float32)
    data = convert(_difference(kind, gap), mode, x, io_type="int8", batch_size=1)
    for runtime in ("tflm", "litert"):
        p = load_device(DEVICE[runtime]).predict(data)
        assert p.runs == (runtime not in refused_by), (runtime, p.reason)
        assert invokes(data, runtime) == p.runs
        if not p.runs:
            runtime_name = "TFLite Micro" if runtime == "tflm" else "LiteRT"
            assert p.reason.startswith(f"{runtime_name}'s {kind.upper()} aborts while it prepares")


def _many_sums(gap: float):
    """13 residual sums, and one of two dense layers that nearly cancel (`_difference`), summed."""
    from nas.backend import keras

    L = keras.layers
    inputs = keras.Input((16,), batch_size=1)
    x = L.Dense(16)(inputs)
    for _ in range(13):
        x = L.Add()([x, L.Dense(16)(x)])
    a, b = L.Dense(16, name="a")(inputs), L.Dense(16, name="b")(inputs)
    model = keras.Model(inputs, L.Add()([L.Dense(4)(x), L.Dense(4)(L.Add()([a, b]))]))  # no concatenation: its scale is shared
    w = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32) * 0.1
    model.get_layer("a").set_weights([w, np.full(16, 50.0, np.float32)])
    model.get_layer("b").set_weights([-w * (1 + gap), np.full(16, -50.0, np.float32)])
    return model


def test_many_sums_are_checked_at_once_as_a_few_are_one_by_one():
    from nas.candidate import convert
    from nas.latency import load_device, parse_tflite
    from nas.latency._runtimes import _FEW_ROWS

    x = np.random.default_rng(1).normal(size=(32, 16)).astype(np.float32)
    aborts, runs = (convert(_many_sums(gap), "int8", x, io_type="int8", batch_size=1) for gap in (1e-5, 1e-3))
    assert sum(op.name == "ADD" for op in parse_tflite(aborts).operators) > _FEW_ROWS  # the numpy path
    for runtime in ("tflm", "litert"):
        p = load_device(DEVICE[runtime]).predict(aborts)
        assert not p.runs and "ADD aborts while it prepares" in p.reason and not invokes(aborts, runtime)
        assert load_device(DEVICE[runtime]).predict(runs).runs and invokes(runs, runtime)


def test_quantization_scales_are_read_as_the_runtime_reads_them():
    from ai_edge_litert.interpreter import Interpreter

    from nas.latency import parse_tflite

    data = _op_model("layer-norm", "int16x8")
    graph = parse_tflite(data)
    details = Interpreter(model_content=data).get_tensor_details()
    expected = [0.0] * len(graph.shapes)
    for d in details:
        scales = d["quantization_parameters"]["scales"]
        expected[d["index"]] = float(scales[0]) if len(scales) else 0.0
    assert graph.scales == pytest.approx(expected, rel=1e-7, abs=0.0)
    assert 0.0 in graph.scales and any(s > 0 for s in graph.scales)  # the weights' and an unquantized tensor's alike


def test_one_tensor_s_scale_reads_as_all_of_them_do():
    from nas.latency import parse_tflite

    graph = parse_tflite(_op_model("layer-norm", "int8"))
    alone = [graph.scale(j) for j in range(len(graph.shapes))]  # read one by one, before `scales` is cached
    assert alone == graph.scales.tolist() and any(alone)


def test_the_add_sub_rescaling_check_is_the_same_for_a_few_operators_and_for_many():
    from nas.latency._runtimes import _BELOW_ONE, _first_unfit, rescales

    rng = np.random.default_rng(0)
    scales = np.concatenate([[0.0, 1.0, 0.5, 2.0 ** -19, 2.0 ** -14], rng.uniform(0, 1, 40) * 10.0 ** rng.integers(-7, 0, 40)])
    # an output rescaling of 1 - 2^-33 rounds up to 1.0 in the kernel's 31-bit mantissa and aborts; 1 - 2^-31 does not
    for gap, fits in ((2.0 ** -33, False), (2.0 ** -31, True)):
        s_out = 2.0 ** -20 / (1 - gap)  # inputs of scale 0.5: twice the larger is 1
        assert 1 - gap < _BELOW_ONE or not fits
        assert rescales("tflm", True, 0.5, 0.5, s_out, False) == fits
        assert (_first_unfit("tflm", [(1, 0, 0, 1, 0)], np.array([0.5, s_out])) is None) == fits
    rows = [(int(add), int(a), int(b), int(out), int(i16)) for add, a, b, out, i16
            in zip(rng.integers(0, 2, 3000), rng.integers(0, 45, 3000), rng.integers(0, 45, 3000), rng.integers(0, 45, 3000),
                   rng.integers(0, 2, 3000))]
    for runtime in ("tflm", "litert"):
        one_by_one = [rescales(runtime, bool(r[0]), scales[r[1]], scales[r[2]], scales[r[3]], bool(r[4])) for r in rows]
        assert 100 < sum(one_by_one) < len(rows) - 100  # both outcomes, often
        for i in range(0, len(rows), 60):  # the first failing row of each slice, found both ways
            chunk = rows[i:i + 60]
            first = next((r for r, ok in zip(chunk, one_by_one[i:i + 60]) if not ok), None)
            found = _first_unfit(runtime, chunk, scales)
            assert (found is None) == (first is None)
            if first is not None:
                assert found == (bool(first[0]), scales[first[1]], scales[first[2]], scales[first[3]])


def _uint8_model(tmp_path) -> bytes:
    """A model quantized to uint8 throughout, as TensorFlow 1's converter made the model zoos' `_quant` files."""
    from nas.backend import keras, tf

    L = keras.layers
    inputs = keras.Input((16, 16, 3), batch_size=1, name="image")
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(L.Conv2D(8, 3, padding="same", activation="relu")(inputs))
    keras.Model(inputs, L.Dense(4)(L.GlobalAveragePooling2D()(x))).save(tmp_path / "saved", save_format="tf")
    converter = tf.compat.v1.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    converter.inference_type = tf.uint8
    converter.quantized_input_stats = {"serving_default_image": (128.0, 127.0)}
    converter.default_ranges_stats = (0, 6)
    return converter.convert()


def test_a_model_quantized_to_uint8_throughout_is_refused_not_priced_as_float(tmp_path):
    from nas.latency import load_device, model_mode

    data = _uint8_model(tmp_path)
    assert model_mode(data) == "uint8"
    tflm, litert = load_device("host-tflm-icount").predict(data), load_device("host-litert-icount").predict(data)
    assert not tflm.runs and tflm.reason == "host-tflm-icount (tflm) does not run uint8 models; it runs float32, int8, int16x8"
    assert not invokes(data, "tflm")
    assert not litert.runs and "not calibrated for uint8 models" in litert.reason
    assert invokes(data, "litert")  # LiteRT runs it: refused for want of a calibration, not as impossible
    assert model_mode(_op_model("CONV_2D", "int8", io="uint8")) == "int8"  # uint8 at the edges alone stays int8


def _gru(unroll: bool):
    from nas.backend import keras

    inputs = keras.Input((20, 8), batch_size=1)
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GRU(16, unroll=unroll)(inputs)))


def test_a_loop_is_refused_as_what_the_predictor_cannot_read_though_the_runtime_runs_it():
    from nas.candidate import convert
    from nas.latency import kernels_from_tflite, load_device

    x = np.random.default_rng(0).normal(size=(16, 20, 8)).astype(np.float32)
    loop, unrolled = (convert(_gru(unroll), "float32", x, io_type="float32", batch_size=1) for unroll in (False, True))
    assert "WHILE" in {k.op for k in kernels_from_tflite(loop)}
    for runtime in ("tflm", "litert"):
        p = load_device(DEVICE[runtime]).predict(loop)
        assert not p.runs and p.reason.startswith("the model has control flow (WHILE)") and "unroll=True" in p.reason
        assert invokes(loop, runtime)  # the runtime runs it: the predictor's own limit, and it says so
        assert load_device(DEVICE[runtime]).predict(unrolled).runs
