import json
import os
import re
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
        (["evaluate", "--dataset", "digits", "--arch", "ARCH", "--quant", "int4"], "invalid choice: 'int4' (choose from 'float32'"),
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
    result = run("evaluate", "--dataset", "digits", "--arch", "arch.json", "--quantization", "int8", "--epochs", "5",
                 "--json", "--save-tflite", "out/model.tflite", "--device", BOARD, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("accuracy", "float_accuracy", "size_bytes", "params", "macs", "peak_ram_bytes", "host_latency_ms", "tflm_compatible"):
        assert key in data, key
    assert 0 <= data["accuracy"] <= 1 and data["tflm_compatible"] is True
    assert (tmp_path / "out" / "model.tflite").stat().st_size == data["size_bytes"]
    on = data["device"]  # priced on the board, said as predicted, with the error for the case
    assert on["name"] == BOARD and on["latency_ms"] > 0 and on["source"] == f"predicted by {BOARD}'s latency model"
    assert 0 < on["error_pct"] <= on["error_max_pct"]
    unknown = run("evaluate", "--dataset", "digits", "--arch", "arch.json", "--device", "cortex-m4", cwd=tmp_path)
    assert unknown.returncode == 2 and "cortex-m4-" in unknown.stderr  # refused before training, with suggestions


BOARD = "cortex-m33-stm32u575-xcubeai-10.2"


@pytest.fixture(scope="module")
def board_arch(tmp_path_factory):
    """An architecture from `nas space sample`, in the int8 mode the X-CUBE-AI board runs."""
    sample = run("space", "sample", "--space", "mobilenet_tiny", "--seed", "1")
    assert sample.returncode == 0, sample.stderr
    data = json.loads(sample.stdout)
    data["spec"]["quantization"] = "int8"
    path = tmp_path_factory.mktemp("predict") / "arch.json"
    path.write_text(json.dumps(data))
    return path


def test_predict_prices_an_architecture_on_a_board_with_its_error(board_arch):
    from nas.latency import load_device
    from nas.spec import ArchSpec

    result = run("predict", str(board_arch), "--device", BOARD, "--classes", "7")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith(f"{board_arch}  [int8]  ")
    assert re.search(r" [\d,]+\.\d{3} ms \(error for a model no board has run: mean \d+%, max \d+%", line), line
    listed = run("predict", str(board_arch), "--device", BOARD, "--classes", "7", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert {"path", "mode", "runs", "unit", "latency_ms", "error_pct", "error_max_pct"} <= set(entry)
    assert entry["runs"] is True and entry["unit"] == "ms" and entry["mode"] == "int8"
    assert 0 < entry["error_pct"] <= entry["error_max_pct"]
    # the CLI is thin: the number is the Python API's for the same spec, channels and classes
    expected = load_device(BOARD).predict(ArchSpec.from_json(board_arch.read_text()), 1, 7)
    assert entry["latency_ms"] == pytest.approx(expected.latency_ms)
    assert f"{entry['latency_ms']:,.3f} ms" in line and f"mean {entry['error_pct']:.0f}%" in line


def test_a_sample_in_the_boards_mode_is_priced_and_one_in_another_says_how(tmp_path):
    sample = run("space", "sample", "--space", "mobilenet_tiny", "--seed", "1", "--quantization", "int8")
    assert sample.returncode == 0 and json.loads(sample.stdout)["spec"]["quantization"] == "int8"
    floating = run("space", "sample", "--space", "mobilenet_tiny", "--seed", "1", "--quantization", "float32")
    (tmp_path / "f.json").write_text(floating.stdout)
    refused = run("predict", str(tmp_path / "f.json"), "--device", BOARD)
    assert "not predicted" in refused.stdout and "--quantization int8" in refused.stdout, refused.stdout
    priced = run("predict", str(tmp_path / "f.json"), "--device", BOARD, "--quantization", "int8")
    assert priced.returncode == 0 and "[int8]" in priced.stdout and " ms (error" in priced.stdout, priced.stdout
    (tmp_path / "m.tflite").write_bytes(b"TFL3")
    wrong = run("predict", str(tmp_path / "m.tflite"), "--device", BOARD, "--quantization", "int8")
    assert wrong.returncode == 2 and "applies to architecture .json files only" in wrong.stderr


@pytest.mark.parametrize("flag, value, allowed", [("--channels", "-2", "1 or more"), ("--channels", "0", "1 or more"),
                                                  ("--classes", "-5", "2 or more"), ("--classes", "1", "2 or more"),
                                                  ("--channels", "two", "1 or more")])
def test_predict_refuses_nonsense_input_in_one_line(board_arch, flag, value, allowed):
    result = run("predict", str(board_arch), "--device", BOARD, flag, value, "--json")
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"nas: error: argument {flag}: ") and value in line and allowed in line, line


def _numeric_flags():
    """(subcommand path, flag) of every option of every command that takes a value of a type."""
    import argparse

    from nas.cli import build_parser

    found = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.option_strings and action.type is not None:
                found.append((tuple(path), action.option_strings[-1]))

    walk(build_parser(), [])
    return found


def test_every_numeric_flag_is_checked():
    flags = _numeric_flags()
    assert len(flags) >= 30 and (("predict",), "--channels") in flags and (("search",), "--max-energy-uj") in flags


@pytest.mark.parametrize("path, flag", _numeric_flags(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
@pytest.mark.parametrize("value", ["-1", "nan", "inf", "x"])
def test_every_numeric_flag_refuses_nonsense_before_any_work(capsys, path, flag, value):
    from nas.cli import main

    with pytest.raises(SystemExit) as exited:
        main([*path, flag, value])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"nas: error: argument {flag}: ") and value in line and "expected" in line, line


@pytest.mark.parametrize("path, flag", [(("space", "sample"), "--count"), (("evaluate",), "--epochs"),
                                        (("evaluate",), "--batch-size"), (("evaluate",), "--resolution"),
                                        (("predict",), "--channels"), (("search",), "--trials"),
                                        (("search",), "--max-size-kb"), (("search",), "--max-ram-kb"),
                                        (("search",), "--max-latency-ms"), (("search",), "--max-energy-uj"),
                                        (("search",), "--time-budget-s"), (("search",), "--workers"),
                                        (("search",), "--cpus-per-trial"), (("baselines",), "--input-scale")],
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_a_flag_where_zero_means_nothing_refuses_zero(capsys, path, flag):
    from nas.cli import main

    with pytest.raises(SystemExit) as exited:
        main([*path, flag, "0"])
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"nas: error: argument {flag}: 0 is not allowed; expected "), line
