"""The final-training recipe (issue 13): settings and their errors, the schedule, the losses,
augmentation; and, marked integration, QAT and distillation run for real on a small model."""

import numpy as np
import pytest

from nas.candidate import FINAL_DEFAULTS, TrainConfig, learning_rate, make_loss, soft_targets, targets
from nas.data import AUGMENTATIONS, Augmentation, augment_batch, load_dataset, prepare
from nas.errors import ConfigError
from nas.search import load_study

from helpers import TINY_SPEC, write_study


# --- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, message", [
    ({"schedule": "step"}, "training.schedule: 'step' is not one of ['constant', 'cosine']"),
    ({"qat": "yes"}, "training.qat: 'yes' is not one of ['auto', 'on', 'off']"),
    ({"label_smoothing": 0.9}, "training.label_smoothing: expected a number in [0, 0.5]"),
    ({"warmup_epochs": 1.0}, "warm-up needs schedule: cosine"),
    ({"schedule": "cosine", "warmup_epochs": 12, "epochs": 10}, "training.warmup_epochs: expected a number in [0, epochs=10)"),
    ({"kd_temperature": 0.5}, "training.kd_temperature"),
    ({"kd_weight": 2}, "training.kd_weight"),
    ({"augment": "yes"}, "training.augment: expected true or false"),
    ({"qat_epochs": 0}, "training.qat_epochs: expected an integer >= 1"),
])
def test_bad_training_settings_are_one_line_errors(changes, message):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**changes)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_proxy_stays_cheap_and_final_turns_the_recipe_on():
    proxy = TrainConfig()
    assert (proxy.schedule, proxy.augment, proxy.qat, proxy.teacher, proxy.label_smoothing) == ("constant", False, "off", "none", 0.0)
    assert (FINAL_DEFAULTS.schedule, FINAL_DEFAULTS.augment, FINAL_DEFAULTS.qat) == ("cosine", True, "auto")
    assert FINAL_DEFAULTS.label_smoothing == pytest.approx(0.1) and FINAL_DEFAULTS.warmup_epochs > 0


def test_study_final_keys_merge_onto_the_final_defaults(tmp_path):
    config = load_study(write_study(tmp_path / "s.yaml", final={"epochs": 5, "qat": "on"}))
    assert config.final.epochs == 5 and config.final.qat == "on"
    assert config.final.augment and config.final.schedule == "cosine"  # kept from FINAL_DEFAULTS
    assert not config.proxy.augment and config.proxy.schedule == "constant"


@pytest.mark.parametrize("changes, message", [
    ({"final": {"epochs": 5, "mixup": True}}, "final: unknown key(s) ['mixup']"),
    ({"proxy": {"teacher": "auto"}}, "distillation is for the final training only"),
    ({"final": {"teacher": "missing.keras"}}, "final.teacher: 'missing.keras' is not 'none', 'auto', a baseline (custom, vgg16, mobilenet) or an existing"),
    ({"final": {"epochs": 1}}, "training.warmup_epochs"),
])
def test_bad_final_settings_in_a_study_name_the_key(tmp_path, changes, message):
    with pytest.raises(ConfigError) as err:
        load_study(write_study(tmp_path / "s.yaml", **changes))
    assert message in str(err.value), str(err.value)


def test_new_settings_are_part_of_the_resume_identity(tmp_path):
    a = load_study(write_study(tmp_path / "a.yaml"))
    b = load_study(write_study(tmp_path / "b.yaml", final={"epochs": 3, "patience": 2, "label_smoothing": 0.0}))
    assert a.identity("f")["final"]["label_smoothing"] == pytest.approx(0.1)
    assert a.identity("f") != b.identity("f")


# --- schedule and losses --------------------------------------------------------------------------
def test_warmup_then_cosine_decay():
    cfg = TrainConfig(epochs=10, learning_rate=0.01, schedule="cosine", warmup_epochs=2.0)
    schedule = learning_rate(cfg, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 10, 20, 60, 99)]
    assert rates[0] == pytest.approx(0.0, abs=1e-6)
    assert rates[1] == pytest.approx(0.005, rel=1e-3)  # half-way through the warm-up
    assert rates[2] == pytest.approx(0.01, rel=1e-3)  # the peak
    assert rates[2] > rates[3] > rates[4] and rates[4] < 1e-4
    assert learning_rate(TrainConfig(learning_rate=0.01), 10) == 0.01


def test_label_smoothing_matches_keras():
    from nas.backend import keras

    y = np.array([0, 2, 1])
    pred = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]], np.float32)
    ours = make_loss(3, label_smoothing=0.1)(targets(y, 3), pred).numpy()
    theirs = keras.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction="none")(targets(y, 3), pred).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_distillation_loss_pulls_toward_the_teacher():
    y = np.array([0, 0])
    teacher = soft_targets(np.array([[0.6, 0.4, 0.0], [0.6, 0.4, 0.0]]), temperature=2.0)
    loss = make_loss(3, temperature=2.0, kd_weight=0.0)  # the soft part only
    near = np.array([[0.6, 0.4, 1e-6], [0.6, 0.4, 1e-6]], np.float32)
    far = np.array([[0.98, 0.01, 0.01], [0.98, 0.01, 0.01]], np.float32)
    t = targets(y, 3, teacher)
    assert t.shape == (2, 6)
    assert float(loss(t, near).numpy().mean()) < 1e-3 < float(loss(t, far).numpy().mean())
    np.testing.assert_allclose(soft_targets(np.array([[0.25, 0.75]]), 1.0), [[0.25, 0.75]], rtol=1e-5)


# --- augmentation ---------------------------------------------------------------------------------
def test_augmentation_is_declared_per_dataset_and_never_flips_digits():
    assert not AUGMENTATIONS["digits"].horizontal_flip and not AUGMENTATIONS["pneumonia"].vertical_flip
    assert AUGMENTATIONS["skin_lesion"].horizontal_flip and AUGMENTATIONS["skin_lesion"].vertical_flip
    assert load_dataset("digits").augmentation == AUGMENTATIONS["digits"]
    with pytest.raises(ConfigError, match="max_shift"):
        Augmentation(max_shift=0.9)


def test_augmentation_keeps_shape_and_is_seeded():
    x = prepare(load_dataset("digits").x_train[:16], 16, 1)
    aug = Augmentation(max_shift=0.1, max_rotation_deg=10, horizontal_flip=True)
    a = augment_batch(x, aug, np.array([0, 1])).numpy()
    b = augment_batch(x, aug, np.array([0, 1])).numpy()
    c = augment_batch(x, aug, np.array([0, 2])).numpy()
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, x)
    assert 0.0 <= a.min() and a.max() <= 1.0 + 1e-6
    flat = np.full((2, 8, 8, 1), 0.5, np.float32)  # moving a uniform image changes nothing
    np.testing.assert_allclose(augment_batch(flat, aug, np.array([3, 4])).numpy(), flat, atol=1e-6)


def test_augmented_batches_keep_their_labels():
    from nas.candidate import batches

    d = load_dataset("digits")
    x, y = prepare(d.x_train[:200], 16, 1), targets(d.y_train[:200], 10)
    plain = [b[1].numpy() for b in batches(x, y, 32, seed=3)]
    augmented = list(batches(x, y, 32, seed=3, augmentation=AUGMENTATIONS["digits"]))
    for (images, labels), expected in zip(augmented, plain):
        np.testing.assert_array_equal(labels.numpy(), expected)  # same order, labels untouched
        assert images.shape[1:] == (16, 16, 1)


# --- for real: QAT and distillation ---------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.integration
def test_qat_gives_an_accurate_int8_model(digits):
    from nas.candidate import convert, train_candidate
    from nas.candidate._qat import qat_finetune
    from nas.measure import litert_predict

    cfg = TrainConfig(epochs=6, qat_epochs=1, schedule="cosine", warmup_epochs=1.0)
    x, x_val = prepare(digits.x_train, 16, 1), prepare(digits.x_val, 16, 1)
    x_test = prepare(digits.x_test, 16, 1)
    trained = train_candidate(TINY_SPEC, x, digits.y_train, x_val, digits.y_val, 10, cfg, digits.class_weights())
    qat = qat_finetune(trained.model, trained.data, x_val, cfg, 10)
    assert qat.unannotated == ()  # tfmot annotates every layer of our family
    model = convert(qat.model, "int8", x[:100])
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_content=model).get_input_details()[0]
    assert detail["dtype"] == np.int8
    scores = litert_predict(model, x_test)
    float_acc = float(np.mean(trained.model.predict(x_test, verbose=0).argmax(1) == digits.y_test))
    qat_acc = float(np.mean(scores.argmax(1) == digits.y_test))
    assert qat_acc >= 0.9 and qat_acc >= float_acc - 0.03, (qat_acc, float_acc)


@pytest.mark.integration
def test_qat_stage_in_the_pipeline_keeps_the_better_model_on_validation(digits):
    from nas.candidate import evaluate_modes

    cfg = TrainConfig(epochs=4, qat="on", qat_epochs=1)
    int8, int16 = evaluate_modes(TINY_SPEC.replace(quantization="int8"), digits, cfg, ("int8", "int16x8"), split="test")
    assert int8.status == "ok" and int8.qat in ("used", "ptq_kept"), int8.qat_note
    assert int8.qat_val_accuracy is not None and int8.ptq_val_accuracy is not None
    assert int8.val_accuracy == max(int8.qat_val_accuracy, int8.ptq_val_accuracy)
    assert int16.qat == "unsupported" and "int16x8" in int16.qat_note and int16.ptq_accuracy == int16.accuracy


@pytest.mark.integration
def test_a_student_learns_its_teachers_outputs(digits):
    """A teacher that names the next class (c -> c+1) with the label weight at 0: a student trained
    on its outputs predicts the teacher's classes, not the labels. The soft targets are what it learns.
    (Validation labels are shifted the same way, so early stopping keeps an epoch the teacher likes.)"""
    from nas.candidate import train_candidate

    x, x_val = prepare(digits.x_train, 16, 1), prepare(digits.x_val, 16, 1)
    wrong = np.full((len(x), 10), 0.01, np.float32)
    wrong[np.arange(len(x)), (digits.y_train + 1) % 10] = 0.91
    cfg = TrainConfig(epochs=6, patience=6, teacher="shifted", kd_weight=0.0, kd_temperature=2.0)
    shifted_val = (digits.y_val + 1) % 10
    student = train_candidate(TINY_SPEC, x, digits.y_train, x_val, shifted_val, 10, cfg, teacher_probs=wrong)
    pred = student.model.predict(x, verbose=0).argmax(1)
    assert np.mean(pred == (digits.y_train + 1) % 10) > 0.8
    assert np.mean(pred == digits.y_train) < 0.2


def test_a_teacher_file_gives_probabilities_for_every_training_image(tmp_path):
    from dataclasses import replace

    from nas.candidate import compile_for
    from nas.search import attach_teacher
    from nas.spec import build_model

    model = build_model(TINY_SPEC.replace(quantization="float32"), 1, 10)
    compile_for(model, TrainConfig(label_smoothing=0.1), 10, 10)  # a compiled model with our loss saves and loads
    model.save(tmp_path / "teacher.keras")
    config = load_study(write_study(tmp_path / "s.yaml", final={"epochs": 3, "teacher": str(tmp_path / "teacher.keras")}))
    data = load_dataset("digits")
    taught = attach_teacher(data, config, None, tmp_path / "out")
    assert taught.teacher_probs.shape == (len(data.y_train), 10) and taught.teacher_name == "teacher.keras"
    np.testing.assert_allclose(taught.teacher_probs.sum(1), 1.0, rtol=1e-4)
    assert attach_teacher(data, replace(config, final=replace(config.final, teacher="none")), None, tmp_path) is data
    wrong = build_model(TINY_SPEC.replace(quantization="float32"), 1, 7)
    wrong.save(tmp_path / "seven.keras")
    with pytest.raises(ConfigError, match="has 7 outputs; digits has 10 classes"):
        attach_teacher(data, replace(config, final=replace(config.final, teacher=str(tmp_path / "seven.keras"))), None, tmp_path)


@pytest.mark.integration
def test_auto_teacher_is_the_best_float_trial_trained_once_and_cached(tmp_path, digits, monkeypatch):
    import optuna

    import nas.candidate
    from nas.search import attach_teacher

    study = optuna.create_study(directions=["maximize"])
    for number, (spec, float_val) in enumerate([(TINY_SPEC.replace(head_channels=0), 0.80), (TINY_SPEC, 0.95)]):
        trial = study.ask()
        trial.set_user_attr("spec", spec.to_json())
        trial.set_user_attr("float_val_accuracy", float_val)
        study.tell(trial, float_val)
    config = load_study(write_study(tmp_path / "s.yaml", final={"epochs": 3, "patience": 2, "teacher": "auto"}))
    taught = attach_teacher(digits, config, study, tmp_path / "out")
    assert taught.teacher_name == "trial 1 (float, retrained)"  # the higher float validation accuracy
    assert (tmp_path / "out" / "teacher" / "teacher.keras").is_file()
    agreement = np.mean(taught.teacher_probs.argmax(1) == digits.y_train)
    assert agreement > 0.5, agreement  # a trained teacher, not a random one

    def no_training(*args, **kwargs):
        raise AssertionError("the cached teacher was retrained")

    monkeypatch.setattr(nas.candidate, "train_candidate", no_training)
    again = attach_teacher(digits, config, study, tmp_path / "out")
    np.testing.assert_allclose(again.teacher_probs, taught.teacher_probs, atol=1e-5)


@pytest.mark.integration
def test_a_baseline_teacher_is_trained_once_at_the_studys_input_size(tmp_path, digits):
    from nas.search import attach_teacher

    config = load_study(write_study(tmp_path / "s.yaml", final={"epochs": 2, "patience": 2, "teacher": "custom"}))
    taught = attach_teacher(digits, config, None, tmp_path / "out")
    assert taught.teacher_name == "baseline custom (28 px, float)"
    assert np.mean(taught.teacher_probs.argmax(1) == digits.y_train) > 0.5
    assert (tmp_path / "out" / "teacher" / "teacher.json").is_file()


@pytest.mark.integration
def test_a_qat_failure_keeps_the_ptq_model_and_says_why(digits, monkeypatch):
    import nas.candidate._qat as qat_module
    from nas.candidate import evaluate_candidate
    from nas.errors import CandidateFailed

    def refuse(*args, **kwargs):  # fault injection: tfmot refuses the model
        raise CandidateFailed("qat", "tfmot cannot quantize this model: simulated")

    monkeypatch.setattr(qat_module, "qat_finetune", refuse)
    r = evaluate_candidate(TINY_SPEC.replace(quantization="int8"), digits, TrainConfig(epochs=2, qat="on"))
    assert r.status == "ok" and r.qat == "failed" and "simulated" in r.qat_note
    assert r.val_accuracy == r.ptq_val_accuracy and r.tflite is not None
