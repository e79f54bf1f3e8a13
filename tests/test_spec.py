import json

import pytest

from nas.errors import ConfigError, UnknownNameError
from nas.spec import ArchSpec

from helpers import TINY_SPEC


def test_json_round_trip_is_identity():
    again = ArchSpec.from_json(TINY_SPEC.to_json())
    assert again == TINY_SPEC
    assert again.hash == TINY_SPEC.hash
    assert ArchSpec.from_json(TINY_SPEC.to_json(indent=2)) == TINY_SPEC


def test_hash_is_stable_across_processes_and_versions():
    # A fixed value: the hash keys caches and studies, so it must never drift silently.
    assert TINY_SPEC.hash == "553405d3b3eb7106"


def test_hash_changes_with_every_field():
    variants = [
        TINY_SPEC.replace(resolution=20), TINY_SPEC.replace(quantization="float32"), TINY_SPEC.replace(sparsity=0.5),
        TINY_SPEC.replace(head_channels=0), TINY_SPEC.replace(stem_stride=2),
    ]
    assert len({v.hash for v in variants} | {TINY_SPEC.hash}) == len(variants) + 1


def test_spec_is_frozen():
    with pytest.raises(AttributeError):
        TINY_SPEC.resolution = 32  # type: ignore[misc]


def test_accepts_the_sample_envelope():
    envelope = json.dumps({"space": "mobilenet_tiny", "hash": TINY_SPEC.hash, "spec": TINY_SPEC.to_dict()})
    assert ArchSpec.from_json(envelope) == TINY_SPEC


@pytest.mark.parametrize(
    "change, field",
    [
        ({"resolution": 2}, "resolution"),
        ({"stem_stride": 3}, "stem_stride"),
        ({"quantization": "int4"}, "quantization"),
        ({"sparsity": 1.5}, "sparsity"),
        ({"sparsity": "half"}, "sparsity"),
        ({"stages": []}, "stages"),
        ({"stages": [{"depth": 1, "channels": 8, "expansion": 1, "kernel": 4, "stride": 1}]}, "stages[0].kernel"),
        ({"stages": [{"depth": 0, "channels": 8, "expansion": 1, "kernel": 3, "stride": 1}]}, "stages[0].depth"),
        ({"stages": [{"depth": 1, "channels": 8, "expansion": 1, "kernel": 3}]}, "stages[0]"),
        ({"color": "red"}, "color"),
    ],
)
def test_invalid_specs_name_the_field(change, field):
    with pytest.raises(ConfigError) as err:
        ArchSpec.from_dict({**TINY_SPEC.to_dict(), **change})
    assert field in str(err.value) or (field == "quantization" and "quantization mode" in str(err.value))


def test_unknown_quantization_lists_the_valid_modes():
    with pytest.raises(UnknownNameError) as err:
        TINY_SPEC.replace(quantization="int4")
    for mode in ("float32", "float16", "dynamic_int8", "int8", "int16x8"):
        assert mode in str(err.value)


def test_bad_json_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        ArchSpec.from_json("{nope")
    with pytest.raises(ConfigError, match="JSON object"):
        ArchSpec.from_json("[1, 2]")
