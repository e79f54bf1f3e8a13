import pytest

from nas.errors import ConfigError, UnknownNameError
from nas.search import Budgets, load_study, non_dominated, study_names

from helpers import write_study


def test_catalog_studies_load():
    assert {"digits_demo", "fashion_mnist", "pneumonia", "skin_lesion"} <= set(study_names())
    for name in study_names():
        config = load_study(name)
        assert config.budgets.max_size_kb and config.budgets.max_ram_kb
    assert load_study("studies/digits_demo.yaml").name == "digits_demo"


def test_flags_override_the_file(tmp_path):
    config = load_study(write_study(tmp_path / "s.yaml"), trials=7, max_size_kb=100, sampler="random")
    assert config.trials == 7 and config.budgets.max_size_kb == 100 and config.sampler == "random"
    assert config.budgets.max_ram_kb == 48  # untouched


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"colour": "red"}, "unknown key(s) ['colour']"),
        ({"trials": "many"}, "trials: expected int"),
        ({"dataset": "cifar"}, "unknown dataset 'cifar'"),
        ({"sampler": "cma"}, "unknown strategy 'cma'; valid strategies: guided, kerastuner-bayes, kerastuner-hyperband, nsga2, random, tpe"),
        ({"device": "esp32"}, "unknown device 'esp32'"),
        ({"space": "resnet"}, "unknown search space 'resnet'"),
        ({"budgets": {"max_size_kb": -1}}, "budgets.max_size_kb: expected a positive number"),
        ({"budgets": {"max_flash": 1}}, "budgets: unknown key(s) ['max_flash']"),
        ({"proxy": {"epochs": 0}}, "training.epochs"),
        ({"objectives": ["latency_ms"]}, "including 'accuracy'"),
        ({"space_overrides": {"resolution": [4]}}, "resolution: 4 is out of range"),
        ({"space_overrides": {"kernel": [3]}}, "space_overrides: unknown field(s) ['kernel']"),
    ],
)
def test_bad_study_files_name_the_key(tmp_path, changes, message):
    with pytest.raises(ConfigError) as err:
        load_study(write_study(tmp_path / "s.yaml", **changes))
    assert message in str(err.value), str(err.value)


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_study(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_study(tmp_path / "missing.yaml")
    with pytest.raises(UnknownNameError):
        load_study("no_such_study")


def test_budget_violations_are_relative_overshoots():
    b = Budgets(max_size_kb=64, max_ram_kb=32)
    v = b.violations(128 * 1024, 16 * 1024, 3.0)
    assert v == {"size": 1.0, "ram": -0.5}
    assert not b.feasible(128 * 1024, 16 * 1024, None) and b.feasible(64 * 1024, 32 * 1024, 1e9)


def test_non_dominated_mixes_directions():
    rows = [
        {"accuracy": 0.9, "size_bytes": 100},
        {"accuracy": 0.8, "size_bytes": 50},
        {"accuracy": 0.8, "size_bytes": 120},  # dominated by the first
        {"accuracy": 0.95, "size_bytes": 300},
    ]
    front = non_dominated(rows, ["accuracy", "size_bytes"])
    assert [r["size_bytes"] for r in front] == [100, 50, 300]
