import numpy as np
import pytest

from nas.errors import ConfigError, UnknownNameError
from nas.spec import SearchSpace, activation_peak_bytes, count_macs, count_params, load_space, space_names

SPACES = space_names()


def test_shipped_spaces():
    assert {"mobilenet_tiny", "mobilenet_edge"} <= set(SPACES)


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_deterministic_per_seed(name):
    space = load_space(name)
    a = [space.sample(np.random.default_rng(5)).hash for _ in range(3)]
    b = [space.sample(np.random.default_rng(5)).hash for _ in range(3)]
    assert a == b
    many = {space.sample(np.random.default_rng(seed)).hash for seed in range(20)}
    assert len(many) == 20


@pytest.mark.parametrize("name", SPACES)
def test_200_samples_build_keras_models_with_the_planned_parameter_count(name):
    from nas.backend import keras
    from nas.spec import build_model

    space = load_space(name)
    rng = np.random.default_rng(0)
    for i in range(200):
        spec = space.sample(rng)
        space.validate(spec)
        assert space.from_params(space.to_params(spec)) == spec
        in_ch, classes = (1, 10) if i % 2 else (3, 7)
        model = build_model(spec, in_ch, classes)
        assert model.count_params() == count_params(spec, in_ch, classes), spec.to_json()
        assert model.output_shape == (None, classes)
        assert model.input_shape == (None, spec.resolution, spec.resolution, in_ch)
        if i % 20 == 19:
            keras.backend.clear_session()


def test_mobilenet_tiny_is_microcontroller_scale():
    space = load_space("mobilenet_tiny")
    rng = np.random.default_rng(1)
    params = [count_params(space.sample(rng), 1, 10) for _ in range(300)]
    assert min(params) < 20_000  # tens of KB at int8
    assert max(params) < 1_500_000  # about 1 MB at int8
    assert min(space.choices["resolution"]) == 28 and max(space.choices["resolution"]) == 96


def test_costs_grow_with_width_and_resolution():
    spec = load_space("mobilenet_tiny").sample(np.random.default_rng(3)).replace(quantization="int8")
    wider = spec.replace(stem_channels=spec.stem_channels * 2)
    bigger = spec.replace(resolution=spec.resolution * 2)
    assert count_macs(wider, 1, 10) > count_macs(spec, 1, 10)
    assert count_macs(bigger, 1, 10) > count_macs(spec, 1, 10)
    assert activation_peak_bytes(bigger, 1, 10) > activation_peak_bytes(spec, 1, 10)
    assert activation_peak_bytes(spec.replace(quantization="float32"), 1, 10) == 4 * activation_peak_bytes(spec, 1, 10)


def test_unknown_space_lists_the_valid_names():
    with pytest.raises(UnknownNameError) as err:
        load_space("mobilenet_huge")
    assert "mobilenet_tiny" in str(err.value) and "mobilenet_edge" in str(err.value)


def test_spec_outside_the_space_names_the_field():
    space = load_space("mobilenet_tiny")
    spec = space.sample(np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"resolution: 224 is not allowed"):
        space.validate(spec.replace(resolution=224))
    stages = [s.__dict__ | {} for s in spec.stages]
    stages[0] = {**stages[0], "channels": 999}
    with pytest.raises(ConfigError, match=r"stages\[0\]\.channels: 999"):
        space.validate(spec.replace(stages=stages))


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"kernel_sizes": [3]}, "unknown key"),
        ({"quantization": ["int4"]}, "quantization"),
        ({"resolution": []}, "resolution"),
        ({"num_stages": [9]}, "num_stages"),
        ({"sparsity": [0.0, 2.0]}, "sparsity"),
    ],
)
def test_bad_space_files_are_config_errors(patch, message):
    import yaml

    from nas.catalog import catalog_file

    data = yaml.safe_load(catalog_file("search_spaces", "mobilenet_tiny").read_text())
    with pytest.raises(ConfigError, match=message):
        SearchSpace.from_dict({**data, **patch})
