import json
import os
import subprocess
import sys

import pytest

from helpers import TINY_SPEC

NAS = [sys.executable, "-m", "nas.cli"]


def run(*args, input=None, cwd=None):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    return subprocess.run([*NAS, *args], capture_output=True, text=True, input=input, cwd=cwd, env=env, timeout=600)


def test_help_does_not_import_tensorflow():
    code = "import sys, nas.cli; nas.cli.build_parser(); print(sorted(m for m in ('tensorflow', 'ray', 'matplotlib', 'optuna') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert run("--help").returncode == 0


def test_space_sample_is_seeded_json():
    a = run("space", "sample", "--space", "mobilenet_tiny", "--seed", "3")
    b = run("space", "sample", "--space", "mobilenet_tiny", "--seed", "3")
    assert a.returncode == 0 and a.stdout == b.stdout
    data = json.loads(a.stdout)
    assert data["space"] == "mobilenet_tiny" and len(data["hash"]) == 16
    many = json.loads(run("space", "sample", "--space", "mobilenet_edge", "--count", "3").stdout)
    assert len({m["hash"] for m in many}) == 3


def test_devices_json_lists_the_profiles():
    rows = json.loads(run("devices", "--json").stdout)
    tflm = {r["name"]: r for r in rows}["host-tflm"]
    assert "dynamic_int8" not in tflm["quantization"] and "float16" not in tflm["quantization"]
    assert run("devices").returncode == 0


def test_space_list_json():
    rows = json.loads(run("space", "list", "--json").stdout)
    assert {r["name"] for r in rows} >= {"mobilenet_tiny", "mobilenet_edge"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["space", "sample", "--space", "nope"], "unknown search space 'nope'; valid search spaces: mobilenet_edge, mobilenet_tiny"),
        (["evaluate", "--dataset", "cifar", "--arch", "ARCH"], "unknown dataset 'cifar'; valid datasets: digits, fashion_mnist"),
        (["evaluate", "--dataset", "digits", "--arch", "ARCH", "--quant", "int4"], "unknown quantization mode 'int4'"),
        (["evaluate", "--dataset", "digits", "--arch", "missing.json"], "cannot read missing.json"),
        (["evaluate", "--dataset", "digits", "--arch", "ARCH", "--space", "mobilenet_tiny"], "resolution: 16 is not allowed by space"),
        (["evaluate", "--dataset", "fashion_mnist", "--arch", "ARCH", "--data-dir", "DIR"], "train-images-idx3-ubyte.gz"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "arch.json").write_text(TINY_SPEC.to_json())
    args = [str(tmp_path / "arch.json") if a == "ARCH" else str(tmp_path) if a == "DIR" else a for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas: error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.integration
def test_evaluate_json_end_to_end(tmp_path):
    (tmp_path / "arch.json").write_text(TINY_SPEC.to_json())
    result = run("evaluate", "--dataset", "digits", "--arch", "arch.json", "--quant", "int8", "--epochs", "5",
                 "--json", "--save-tflite", "out/model.tflite", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("accuracy", "float_accuracy", "size_bytes", "params", "macs", "peak_ram_bytes", "host_latency_ms", "tflm_compatible"):
        assert key in data, key
    assert 0 <= data["accuracy"] <= 1 and data["tflm_compatible"] is True
    assert (tmp_path / "out" / "model.tflite").stat().st_size == data["size_bytes"]
