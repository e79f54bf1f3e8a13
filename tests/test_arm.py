"""The Arm build (`nas.firmware`) and the models measured on it (`nas.measure.arm_measure`).

The fetching of the pinned sources is tested against a loopback server, here and in CI. The build
and emulation tests need the OS's arm-none-eabi-gcc and qemu-arm and the sources (NAS_ARM_SOURCES,
a folder of the pinned archives, where github.com cannot be reached): `helpers.arm`.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import arm

from nas.errors import ConfigError, DataError


# --- the sources: fetched, verified, refused --------------------------------------------------

def _tarball(top: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Archives(http.server.BaseHTTPRequestHandler):
    served: dict[str, bytes] = {}
    asked: list[str] = []

    def do_GET(self):  # noqa: N802 - the http.server name
        self.asked.append(self.path)
        body = self.served.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Archives)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Archives.served, _Archives.asked = {}, []
    monkeypatch.setenv("NAS_ARM_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("NAS_ARM_SOURCES", raising=False)
    yield _Archives
    server.shutdown()


def _fake_sources(monkeypatch, tmp_path: Path) -> tuple:
    """Two small sources laid out as the real ones are (TFLite Micro at the top, one download),
    with their true digests recorded, so that fetching and refusing can be shown on a loopback."""
    import nas.firmware._sources as sources
    from nas.firmware import Source, tree_digest

    top = {"LICENSE": b"Apache\n", "tensorflow/lite/micro/micro_interpreter.h": b"// interpreter\n"}
    dep = {"LICENSE": b"MIT\n", "include/lib.h": b"#define LIB 1\n", "tests/huge.bin": b"x" * 100}
    digests = []
    for files, keep in ((top, ("LICENSE", "tensorflow")), (dep, ("LICENSE", "include"))):
        folder = tmp_path / f"d{len(digests)}"
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        digests.append(tree_digest(folder, keep))
    fake = (Source("", "tensorflow/tflite-micro", "abc123", ("LICENSE", "tensorflow"), digests[0]),
            Source("lib", "someone/lib", "v1.0", ("LICENSE", "include"), digests[1]))
    monkeypatch.setattr(sources, "SOURCES", fake)
    return fake, {"/tensorflow/tflite-micro/archive/abc123.tar.gz": _tarball("tflite-micro-abc123", top),
                  "/someone/lib/archive/v1.0.tar.gz": _tarball("lib-1.0", dep)}


def test_the_pinned_sources_download_from_a_mirror_keep_only_what_builds_and_are_verified(monkeypatch, tmp_path, mirror):
    from nas.firmware import fetch_sources

    fake, archives = _fake_sources(monkeypatch, tmp_path)
    mirror.served.update(archives)
    tree = fetch_sources(tmp_path / "src")
    assert sorted(mirror.asked) == sorted(archives)
    assert (tree / "tensorflow/lite/micro/micro_interpreter.h").read_bytes() == b"// interpreter\n"
    downloads = tree / "tensorflow/lite/micro/tools/make/downloads"
    assert (downloads / "lib/include/lib.h").exists() and not (downloads / "lib/tests").exists()
    assert (downloads / "pigweed").is_dir() and (downloads / "gcc_embedded").is_dir()  # TFLite Micro does not fetch them
    assert (tree / ".complete").read_text().count("\n") == len(fake)
    mirror.asked.clear()
    assert fetch_sources(tmp_path / "src") == tree and mirror.asked == []  # once


def test_a_source_whose_files_differ_from_the_pinned_ones_is_refused_and_nothing_is_installed(monkeypatch, tmp_path, mirror):
    from nas.firmware import fetch_sources

    _, archives = _fake_sources(monkeypatch, tmp_path)
    archives["/someone/lib/archive/v1.0.tar.gz"] = _tarball("lib-1.0", {"LICENSE": b"MIT\n", "include/lib.h": b"#define LIB 2\n"})
    mirror.served.update(archives)
    with pytest.raises(DataError, match=r"its files are not those of someone/lib at v1.0 .*nothing was installed"):
        fetch_sources(tmp_path / "src")
    assert not (tmp_path / "src").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sources-")]  # the half-made tree is gone


def test_an_unreachable_source_says_where_to_put_the_archives(monkeypatch, tmp_path, mirror):
    from nas.firmware import fetch_sources

    _fake_sources(monkeypatch, tmp_path)  # the mirror serves nothing: 404
    with pytest.raises(DataError, match=r"cannot download http://127\.0\.0\.1:\d+/tensorflow/tflite-micro/archive/abc123"
                                        r"\.tar\.gz.*set NAS_ARM_SOURCES"):
        fetch_sources(tmp_path / "src")


def test_a_folder_of_archives_is_used_before_any_server(monkeypatch, tmp_path, mirror):
    from nas.firmware import fetch_sources

    _, archives = _fake_sources(monkeypatch, tmp_path)
    folder = tmp_path / "archives"
    folder.mkdir()
    (folder / "tflite-micro-abc123.tar.gz").write_bytes(archives["/tensorflow/tflite-micro/archive/abc123.tar.gz"])
    (folder / "lib-v1.0.tar.gz").write_bytes(archives["/someone/lib/archive/v1.0.tar.gz"])
    monkeypatch.setenv("NAS_ARM_SOURCES", str(folder))
    fetch_sources(tmp_path / "src")
    assert mirror.asked == []


def test_the_tree_digest_covers_content_and_the_executable_bit(tmp_path):
    from nas.firmware import tree_digest

    (tmp_path / "a").mkdir()
    script = tmp_path / "a" / "run.sh"
    script.write_text("echo 1\n")
    before = tree_digest(tmp_path, ("a",))
    script.chmod(0o755)
    with_x = tree_digest(tmp_path, ("a",))
    script.write_text("echo 2\n")
    assert len({before, with_x, tree_digest(tmp_path, ("a",))}) == 3


def test_the_arm_devices_name_a_core_and_kernel_set_that_exist():
    from nas.firmware import CORES, KERNELS
    from nas.latency import device_names, load_device

    arm_devices = [load_device(n) for n in device_names() if load_device(n).measure == "qemu"]
    assert {(d.arm_core, d.kernels) for d in arm_devices} == {(c, k) for c in CORES for k in KERNELS}
    for d in arm_devices:
        assert d.name == f"{d.arm_core}-qemu-{d.kernels}" and d.unit == "instructions"
        # CMSIS-NN's FULLY_CONNECTED refuses the converter's per-channel int16x8 weights (measured below)
        assert ("int16x8" in d.quantization) == (d.kernels == "reference")


def test_operators_pair_their_marks_nested_inside_the_operator_that_runs_their_subgraph():
    from nas.measure._arm import _operators

    marks = [("B", 100), ("E", 130), ("B", 130), ("B", 140), ("E", 150), ("B", 150), ("E", 165), ("E", 180), ("B", 180), ("E", 181)]
    ops = _operators(marks, [(0, "CONV_2D"), (0, "WHILE"), (1, "ADD"), (1, "LESS"), (0, "SOFTMAX")])
    assert [(o.index, o.name, o.instructions, o.depth) for o in ops] == [
        (0, "CONV_2D", 30, 0), (1, "WHILE", 50, 0), (2, "ADD", 10, 1), (3, "LESS", 15, 1), (4, "SOFTMAX", 1, 0)]
    assert _operators(marks[:-1], [(0, "CONV_2D"), (0, "WHILE"), (1, "ADD"), (1, "LESS"), (0, "SOFTMAX")]) is None
    assert _operators(marks, [(0, "CONV_2D")]) is None  # the runner and the counter disagree: no operators, no error


def test_an_export_without_the_arm_build_says_why_and_never_builds_unasked(monkeypatch):
    import nas.firmware
    from nas.errors import DependencyError
    from nas.latency import load_device
    from nas.outputs._firmware import firmware_record

    board = load_device("cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1")
    monkeypatch.setattr(nas.firmware, "is_built", lambda core, kernels: False)
    record, files = firmware_record(b"model", "cortex-m4", board)
    assert not record["measured"] and "not set up: `make arm`" in record["why"] and files == {}

    def no_toolchain(*args, **kwargs):
        raise DependencyError("the Arm build needs arm-none-eabi-gcc, not found")

    monkeypatch.setattr(nas.firmware, "require_toolchain", no_toolchain)
    record, files = firmware_record(b"model", "cortex-m4", board, explicit=True)
    assert not record["measured"] and "arm-none-eabi-gcc, not found" in record["why"] and files == {}
    record, _ = firmware_record(b"model", None, load_device("host-tflm"))
    assert "has no core the Arm build targets" in record["why"]


def test_nas_measure_refuses_a_device_that_is_not_an_arm_build(capsys):
    from nas.cli import main

    assert main(["measure", "--device", "host-tflm-icount", __file__]) == 2
    assert "is not such a device" in capsys.readouterr().err


def test_nas_firmware_run_refuses_a_folder_that_is_not_an_exported_firmware(capsys, tmp_path):
    from nas.cli import main

    (tmp_path / "model_data.c").write_text("")
    assert main(["firmware", "run", str(tmp_path), "--core", "cortex-m4", "--kernels", "cmsisnn"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not an exported firmware folder with a golden check: no golden.c, main.cc" in err and "\n" not in err
    assert main(["firmware", "run", str(tmp_path / "none"), "--core", "cortex-m4", "--kernels", "cmsisnn"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_data.c"]  # nothing written


# --- the Arm build under QEMU ------------------------------------------------------------------

def _tflm_model(name: str) -> bytes:
    from nas.firmware import sources

    return (sources() / "tensorflow/lite/micro/models" / name).read_bytes()


def _op_model(op: str, mode: str) -> bytes:
    from nas.candidate import convert
    from nas.calibration import build_op_model, settle

    rng = np.random.default_rng(7)
    model, xs = build_op_model(op, rng)
    settle(model, xs[0], rng, steps=2)
    return convert(model, mode, xs[0], io_type="int8" if mode == "int8" else "float32", batch_size=1)


@arm
@pytest.mark.integration
def test_an_int8_model_counts_the_same_every_run_and_its_outputs_are_the_hosts():
    from nas.measure import arm_measure

    model = _tflm_model("keyword_scrambled.tflite")
    first, second = (arm_measure(model, "cortex-m4", "cmsisnn") for _ in range(2))
    c = first.count
    assert c.instructions == second.count.instructions and c.operators == second.count.operators
    # the trial build's figure for this model and core (shared/reference/cortex-m-emulation.md: 136,063
    # summed over operators, soft-float ABI and a tick source between them)
    assert abs(c.instructions - 136_063) / 136_063 < 0.02
    assert first.outputs_match_host is True
    assert {o.name for o in c.operators} == {"QUANTIZE", "SVDF", "FULLY_CONNECTED", "SOFTMAX"}
    assert all(o.depth == 0 for o in c.operators)  # no subgraph here
    # the arena firmware gets is one it ran in: a little over what TFLite Micro reports using
    assert c.arena_bytes + 16 <= first.firmware_arena_bytes <= c.arena_bytes + 65536 + 16
    # the profiled operators add up to the unprofiled invoke, less the interpreter's own work between them
    assert 0.97 * c.instructions < sum(o.instructions for o in c.operators) <= c.instructions + 30 * len(c.operators)
    assert 64 < c.stack_bytes < 8192 and c.arena_bytes > 1000 and not c.extra


@arm
@pytest.mark.integration
def test_a_models_arm_counts_split_by_kernel_class_add_up_to_its_invoke():
    """What the board catalog is fitted on: each operator's count to its kernel class, the rest to `other`."""
    from nas.calibration import counted_class_instructions
    from nas.latency import kernel_class, kernels_from_tflite, load_device
    from nas.measure import HostTflm, arm_count, golden_input

    model = _op_model("mbconv", "int8")  # 1x1, depthwise and k x k convolutions, an addition
    host = HostTflm(model)
    x = golden_input(host.input["shape"], host.input["dtype"])
    host.close()
    count = arm_count(model, "cortex-m4", "cmsisnn", x)
    classes = counted_class_instructions(model, load_device("cortex-m4-qemu-cmsisnn"))
    assert sum(classes.values()) == count.instructions
    present = {kernel_class(k) for k in kernels_from_tflite(model)}
    assert classes["pointwise"] > 0 and classes["dwconv"] > 0 and classes["other"] > 0
    assert all(v == 0 for c, v in classes.items() if c not in present | {"other"})


@arm
@pytest.mark.integration
def test_the_firmware_holds_the_model_the_kernels_it_registers_and_the_arena_it_used():
    from nas.firmware import build_library, firmware_sources, link_footprint
    from nas.measure import arm_measure

    model = _tflm_model("keyword_scrambled.tflite")
    m = arm_measure(model, "cortex-m4", "cmsisnn")
    assert m.firmware_flash_bytes > len(model) + 20_000  # the model plus a runtime and four kernels
    assert m.firmware_static_ram_bytes >= m.firmware_arena_bytes >= m.count.arena_bytes
    assert f"constexpr size_t kArenaBytes = {m.firmware_arena_bytes};" in m.firmware.files["model_ops.h"]
    tree = build_library("cortex-m4", "cmsisnn").tree
    ops = [o.name for o in m.count.operators]
    one_more = link_footprint(firmware_sources(model, ops + ["CONV_2D"], m.firmware_arena_bytes, tree), "cortex-m4", "cmsisnn")
    assert one_more.flash_bytes > m.firmware_flash_bytes + 2000  # registering CONV_2D links its kernel
    sources = firmware_sources(model, ops, m.firmware_arena_bytes, tree)
    assert sources.operators == ("AddQuantize", "AddSvdf", "AddFullyConnected", "AddSoftmax")
    assert "golden.c" not in sources.files and "golden.c" in m.firmware.files  # the measured image holds no golden pair
    assert "MicroMutableOpResolver<4>" in sources.files["model_ops.h"]
    with pytest.raises(ConfigError, match="no kernel for NOT_AN_OP"):
        firmware_sources(model, ["NOT_AN_OP"], 100, tree)


@arm
@pytest.mark.integration
def test_float_and_int16x8_models_on_the_arm_build(tmp_path):
    from nas.measure import arm_measure

    conv_float = arm_measure(_op_model("CONV_2D", "float32"), "cortex-m4", "cmsisnn")
    assert conv_float.count.instructions > 0
    assert conv_float.max_abs_diff is not None and conv_float.max_abs_diff < 1e-3  # FMA contraction may differ by ulps
    int16 = arm_measure(_op_model("FULLY_CONNECTED/mlp", "int16x8"), "cortex-m4", "cmsisnn")
    assert int16.count.instructions is None and "FULLY_CONNECTED" in int16.count.reason


@arm
@pytest.mark.integration
def test_nas_measure_json_gives_what_the_issue_names(tmp_path):
    path = tmp_path / "kws.tflite"
    path.write_bytes(_tflm_model("keyword_scrambled.tflite"))
    run = subprocess.run([sys.executable, "-m", "nas.cli", "measure", "--device", "cortex-m4-qemu-cmsisnn", str(path), "--json"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    for key in ("instructions", "operators", "firmware_flash_bytes", "firmware_ram_bytes", "outputs_match_host"):
        assert row[key] is not None, key
    assert set(row["operators"][0]) == {"index", "name", "instructions", "depth"}


def test_cmsisnn_devices_price_each_convolution_by_the_kernel_cmsisnn_picks():
    from helpers import TINY_SPEC

    from nas.latency import Kernel, cmsisnn_kernel, load_device

    def conv(family, window, stride=1, dtype="int8", variant=""):
        return Kernel(family, dtype, (64,), 64, macs=64 * window, window=window, stride=stride, variant=variant)

    assert cmsisnn_kernel(conv("conv", 1)).key == "conv/1x1-fast"
    assert cmsisnn_kernel(conv("conv", 1, stride=2)).key == "conv/1x1"
    assert cmsisnn_kernel(conv("conv", 9)).key == "conv/im2col"
    assert cmsisnn_kernel(conv("dwconv", 9)).key == "dwconv/3x3"
    assert cmsisnn_kernel(conv("dwconv", 25)).key == "dwconv/opt"
    assert cmsisnn_kernel(conv("conv", 9, dtype="float32")).key == "conv"  # float convolutions: one path
    assert cmsisnn_kernel(conv("conv", 9, variant="dilated")).key == "conv/dilated"
    device = load_device("cortex-m4-qemu-cmsisnn")
    assert device.artifact["feature_set"] == "cmsisnn"
    coef = device.artifact["modes"]["int8"]["coef"]
    assert {"conv/1x1-fast:macs", "dwconv/3x3:macs"} <= set(coef) and not any(k.startswith("conv:") for k in coef)
    assert TINY_SPEC.quantization == "int8"
    p = device.predict(TINY_SPEC, 1, 10)
    assert p.runs and p.unit == "instructions" and p.instructions > 0 and p.error_pct is not None


def test_a_new_export_without_firmware_removes_the_firmware_an_earlier_one_wrote(tmp_path):
    from nas.outputs._export import _write_all

    _write_all(tmp_path, {"model.tflite": b"old", "firmware/model_data.c": b"old array", "firmware/main.cc": b"main"})
    assert (tmp_path / "firmware" / "model_data.c").read_bytes() == b"old array"
    _write_all(tmp_path, {"model.tflite": b"new"})  # its firmware could not be measured this time
    assert (tmp_path / "model.tflite").read_bytes() == b"new" and not (tmp_path / "firmware").exists()
    _write_all(tmp_path, {"firmware/main.cc": b"main", "firmware/model_data.c": b"array"})
    _write_all(tmp_path, {"model.tflite": b"newer", "firmware/main.cc": b"main 2"})
    assert sorted(p.name for p in (tmp_path / "firmware").iterdir()) == ["main.cc"]  # nothing of the last one's left


# --- the exported example on this machine: every mode TFLite Micro runs ---------------------------

@arm
@pytest.mark.integration
def test_the_example_passes_its_golden_check_on_this_machine_in_every_mode_tflite_micro_runs(tmp_path):
    """The export's firmware/ for a model in each quantization mode, from a raw RGB image larger
    than the model's input (so the preprocessing resizes, converts to grey and quantizes), built
    against TFLite Micro for this machine and run; a changed raw pixel fails it."""
    from helpers import TINY_SPEC

    from nas.candidate import convert
    from nas.firmware import firmware_sources, run_example
    from nas.latency import parse_tflite
    from nas.measure import tflm_arena
    from nas.outputs import golden_pair
    from nas.spec import QUANT_MODES, build_model

    rng = np.random.default_rng(3)
    model = build_model(TINY_SPEC, 1, 10)
    sample = rng.uniform(0, 1, (8, TINY_SPEC.resolution, TINY_SPEC.resolution, 1)).astype(np.float32)
    raw = rng.integers(0, 256, (37, 37, 3), dtype=np.uint8)
    ran = {}
    for mode in QUANT_MODES:
        data = convert(model, mode, sample, batch_size=1)
        arena = tflm_arena(data)
        golden = golden_pair(data, raw, "seven")
        if not arena.compatible:  # the mode TFLite Micro cannot run (hybrid int8): no golden pair, no example
            assert golden is None, mode
            continue
        folder = tmp_path / mode
        names = [op.name for op in parse_tflite(data).operators]
        firmware_sources(data, list(dict.fromkeys(names)), None, golden=golden, host_arena_bytes=arena.arena_bytes).write(folder)
        status, printed = run_example(folder, "host", "reference")
        assert status == 0 and "golden check: passed" in printed, (mode, printed)
        assert "preprocessing: " in printed and "(class seven)" in (folder / "golden.h").read_text()
        ran[mode] = printed
    assert {"float32", "int8", "int16x8"} <= set(ran), sorted(ran)
    folder = tmp_path / "int8"  # a raw image that is not the golden one: its preprocessing no longer matches
    text = (folder / "golden.c").read_text()
    first = text.index("0x", text.index("g_golden_raw"))
    (folder / "golden.c").write_text(text[:first] + ("0xff" if text[first:first + 4] == "0x00" else "0x00") + text[first + 4:])
    status, printed = run_example(folder, "host", "reference")
    assert status == 7 and "golden check: FAILED: preprocessing the raw image" in printed, printed
