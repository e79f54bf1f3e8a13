"""Around the engine (issue 14): a quiet terminal with a full search.log, datasets fetched and
verified from a loopback server, the dashboard on a run, the Python API as the README shows it."""

import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from helpers import fake_evaluate, images, write_idx, write_study

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
NOISE = ("oneDNN", "cuInit", "cuda_", "fully_quantize", "absl::", "XNNPACK delegate", "WARNING: All log messages")


def nas(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**ENV, **(env or {})}, timeout=900)


# --- quiet by default ------------------------------------------------------------------------------
@pytest.mark.integration  # trains
def test_a_search_is_quiet_its_log_keeps_everything_and_verbose_shows_it(tmp_path):
    study = write_study(tmp_path / "s.yaml", trials=2, final_top_k=1)
    quiet = nas("search", str(study), "--out", str(tmp_path / "quiet"), cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    terminal = quiet.stdout + quiet.stderr
    assert not [n for n in NOISE if n in terminal], terminal[-3000:]
    assert "search tiny_test: 2 trained trials" in quiet.stderr and "budgets size <= 40 KB" in quiet.stderr  # the plan
    assert "val %" in quiet.stdout  # the result table
    log = (tmp_path / "quiet" / "search.log").read_text()
    assert "fully_quantize" in log and "XNNPACK delegate" in log and ("oneDNN" in log or "cuInit" in log)
    verbose = nas("search", str(study), "--out", str(tmp_path / "verbose"), "-v", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "fully_quantize" in verbose.stderr and "XNNPACK delegate" in verbose.stderr


def test_bad_input_with_verbose_still_writes_nothing(tmp_path):
    study = write_study(tmp_path / "s.yaml")
    result = nas("-v", "search", str(study), "--out", str(tmp_path / "out"), "--max-size-kb", "1")
    assert result.returncode == 2 and "can meet max size 1.0 KB" in result.stderr
    assert not (tmp_path / "out").exists()  # the log held in memory was never written


# --- datasets fetch ------------------------------------------------------------------------------------
class _Server:
    """Serves `files` (name -> bytes) on loopback. `cut` (name -> n) sends only the first n bytes of a
    file once, then drops the connection; Range requests get 206 unless `ranges` is False."""

    def __init__(self, files: dict[str, bytes], cut: dict[str, int] | None = None, ranges: bool = True):
        self.files, self.cut, self.ranges, self.requests = files, dict(cut or {}), ranges, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/").split("?")[0]
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                data, start = server.files[name], 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and server.ranges:
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if name in server.cut:
                    self.wfile.write(data[start:start + server.cut.pop(name)])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # a dropped connection, mid-file
                    return
                self.wfile.write(data[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _fashion_files() -> dict[str, bytes]:
    files = {}
    for split, n, seed in (("train", 300, 0), ("t10k", 100, 1)):
        x, y = images(n, 28, seed=seed)
        for kind, array in (("images-idx3", x), ("labels-idx1", y)):
            header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
            files[f"{split}-{kind}-ubyte.gz"] = gzip.compress(header + array.astype(np.uint8).tobytes())
    return files


@pytest.fixture
def right_checksums(monkeypatch):
    """The official table with digests of the generated files: the real ones cannot be made offline."""
    from nas.data import REMOTE_FILES, RemoteFile

    files = _fashion_files()
    table = tuple(RemoteFile(r.name, r.url, hashlib.sha256(files[r.name]).hexdigest(), "sha256", len(files[r.name]))
                  for r in REMOTE_FILES["fashion_mnist"][28])
    monkeypatch.setitem(REMOTE_FILES, "fashion_mnist", {28: table})
    return files


def test_wrong_bytes_are_refused_naming_both_checksums_and_nothing_is_left(tmp_path):
    server = _Server({name: b"not the file" * 100 for name in _fashion_files()})
    try:
        result = nas("datasets", "fetch", "fashion_mnist", "--data-dir", str(tmp_path / "D"), "--mirror", server.url)
    finally:
        server.close()
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "does not match its published checksum: expected sha256 " in line and ", got " in line
    assert "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84" in line  # the official digest
    assert not (tmp_path / "D").exists()


def test_right_bytes_are_installed_where_nas_datasets_finds_them(tmp_path, right_checksums):
    from nas.data import fetch_dataset, load_dataset

    server = _Server(right_checksums)
    try:
        paths = fetch_dataset("fashion_mnist", tmp_path / "D", mirror=server.url, progress=False)
        again = fetch_dataset("fashion_mnist", tmp_path / "D", mirror=server.url, progress=False)  # intact: kept
    finally:
        server.close()
    assert sorted(p.name for p in paths) == sorted(right_checksums) and paths == again
    assert len(server.requests) == 4  # the second fetch downloaded nothing
    assert not list((tmp_path / "D").glob("*.part"))
    assert load_dataset("fashion_mnist", tmp_path / "D").num_classes == 10
    listed = {row["name"]: row for row in json.loads(nas("datasets", "--data-dir", str(tmp_path / "D"), "--json").stdout)}
    assert listed["fashion_mnist"]["available"] is True


def test_an_interrupted_download_resumes_where_the_server_allows(tmp_path, right_checksums):
    from nas.data import fetch_dataset
    from nas.errors import DataError

    big = "train-images-idx3-ubyte.gz"
    server = _Server(right_checksums, cut={big: 1000})
    try:
        with pytest.raises(DataError, match="interrupted .* run the same command again to resume"):
            fetch_dataset("fashion_mnist", tmp_path / "D", mirror=server.url, progress=False)
        assert (tmp_path / "D" / f"{big}.part").stat().st_size == 1000
        fetch_dataset("fashion_mnist", tmp_path / "D", mirror=server.url, progress=False)
    finally:
        server.close()
    assert (big, "bytes=1000-") in server.requests  # resumed, not restarted
    assert (tmp_path / "D" / big).read_bytes() == right_checksums[big]


def test_a_server_that_ignores_ranges_gets_a_fresh_verified_download(tmp_path, right_checksums):
    from nas.data import fetch_dataset
    from nas.errors import DataError

    big = "train-images-idx3-ubyte.gz"
    server = _Server(right_checksums, cut={big: 1000}, ranges=False)
    try:
        with pytest.raises(DataError):
            fetch_dataset("fashion_mnist", tmp_path / "D", mirror=server.url, progress=False)
        fetch_dataset("fashion_mnist", tmp_path / "D", mirror=server.url, progress=False)
    finally:
        server.close()
    assert (tmp_path / "D" / big).read_bytes() == right_checksums[big]


def test_fetch_names_what_it_cannot_do(tmp_path):
    assert "nothing to fetch" in nas("datasets", "fetch", "digits").stderr
    result = nas("datasets", "fetch", "pneumonia", "--size", "32", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "28, 64, 128, 224" in result.stderr
    assert "valid downloadable datasets: fashion_mnist, pneumonia, skin_lesion" in nas("datasets", "fetch", "cifar").stderr
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on: the download cannot start
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    failed = nas("datasets", "fetch", "fashion_mnist", "--data-dir", str(tmp_path / "fm"), "--mirror", f"http://127.0.0.1:{port}")
    assert failed.returncode != 0 and "download it by hand and place it at " + str(tmp_path / "fm") in failed.stderr
    assert not (tmp_path / "fm").exists()  # nothing half-written


def test_the_python_api_is_as_quiet_as_the_cli_and_leaves_optuna_as_it_found_it(tmp_path):
    """Optuna's own "A new study created" line goes to search.log, not the caller's terminal; after
    the run a caller's Optuna prints as before."""
    study = write_study(tmp_path / "s.yaml", trials=2)
    code = f"""
import logging, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import optuna
from helpers import fake_evaluate
from nas import run_search
from nas.search import load_study
run_search(load_study({str(study)!r}), {str(tmp_path / "out")!r}, progress=False, evaluate=fake_evaluate)
print("after", file=sys.stderr)
optuna.create_study(study_name="mine")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    during, _, after = done.stderr.partition("after")
    assert "A new study created" not in during, during
    assert "A new study created" in after  # Optuna's handler is back for the caller
    assert "A new study created" in (tmp_path / "out" / "search.log").read_text()


# --- the dashboard -------------------------------------------------------------------------------------
def test_the_dashboard_serves_a_runs_trials_with_their_records_on_loopback(tmp_path):
    pytest.importorskip("optuna_dashboard")
    from nas import run_search
    from nas.search import load_study

    study = write_study(tmp_path / "s.yaml", trials=3, budgets={"max_size_kb": 20, "max_ram_kb": 48})
    run_search(load_study(study), tmp_path / "out", progress=False, evaluate=fake_evaluate)
    # a shell that starts jobs in the background has SIGINT ignored and children inherit it: restore it
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "dashboard", str(tmp_path / "out"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)/dashboard/", line).group(1)
        studies = json.loads(urllib.request.urlopen(f"{url}/api/studies", timeout=30).read())["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == "tiny_test")
        trials = json.loads(urllib.request.urlopen(f"{url}/api/studies/{study_id}?after=0", timeout=30).read())["trials"]
        attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in trials]
        assert attrs and all("size_bytes" in a and "violations" in a for a in attrs)
        assert any("reason" in a for a in attrs if a.get("screened") == "True")
        # budgets in their own units beside the constraint fractions
        assert all("over_budget" in a for a in attrs) and any(" KB of 20 KB: " in a["over_budget"] for a in attrs), attrs
        detail = json.loads(urllib.request.urlopen(f"{url}/api/studies/{study_id}?after=0", timeout=30).read())
        assert detail.get("objective_names", [None])[0] == "proxy_val_accuracy", sorted(detail)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()[-2000:]


# --- the Python API, as the README shows it ---------------------------------------------------------------
@pytest.mark.integration  # trains
def test_the_readme_python_example_runs_as_written(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## From Python\n.*?```python\n(.*?)```", text, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "runs" / "api-demo" / "deploy" / "model.tflite").is_file()
    assert re.search(r"ms on the Cortex-M4", result.stdout), result.stdout
