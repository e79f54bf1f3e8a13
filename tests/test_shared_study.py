"""A study shared across machines (issue 37): a PostgreSQL server, started for real on loopback, holds
a search that is killed and resumed; a journal file is searched by two drivers, the second refused
unless it joins. The server comes from the OS package (`make cluster-deps`); CI sets
NAS_REQUIRE_POSTGRES=1 so that a missing server fails rather than skips."""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from nas import run_search
from nas.errors import ConfigError
from nas.search import load_study, open_study, trial_rows

from helpers import fake_evaluate, write_study

ENV = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}


def _postgres_bin(name: str) -> str | None:
    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of its own on 127.0.0.1 (a free port), with an empty database; stopped after."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        if os.environ.get("NAS_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's initdb and pg_ctl are not installed (make cluster-deps installs them)")
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed (make cluster-deps installs them)")
    import psycopg

    root = Path(tempfile.mkdtemp(prefix="nas-postgres-"))  # under /tmp: pytest's own folders are closed to other users
    data = root / "data"
    # the server refuses to run as root: there, run it as the OS package's own user
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "nas", "--auth=trust", "-E", "UTF8"], check=True,
                   capture_output=True, timeout=120)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True, timeout=120)
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="nas", dbname="postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE studies")  # outside a transaction, as it must be
        yield f"postgresql://nas@127.0.0.1:{port}/studies"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _trials(storage: str, name: str = "tiny_test"):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if "://" not in storage:
        storage = JournalStorage(JournalFileBackend(storage))
    return optuna.load_study(study_name=name, storage=storage).get_trials()


@pytest.mark.integration
def test_a_postgresql_study_is_resumed_after_a_kill_with_no_trial_counted_twice(tmp_path, postgres_url):
    study, out = write_study(tmp_path / "s.yaml", trials=3), tmp_path / "out"
    command = [sys.executable, "-m", "nas.cli", "search", str(study), "--out", str(out), "--storage", postgres_url,
               "--no-progress", "--json"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:  # killed once a trial is done and the next is running
        try:
            states = [t.state.name for t in _trials(postgres_url)]
        except Exception:  # the study is not created yet
            states = []
        if "COMPLETE" in states and "RUNNING" in states:
            break
        time.sleep(0.3)
    assert proc.poll() is None, "the search ended before it could be killed mid-trial"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = {t.number: t.state.name for t in _trials(postgres_url)}
    assert "RUNNING" in before.values()  # left dangling by the kill

    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "interrupted, redone" in result.stderr
    assert json.loads(result.stdout)["trained"] == 3
    after = _trials(postgres_url)
    trained = [t for t in after if t.state.name == "COMPLETE" and not t.user_attrs.get("screened")]
    assert len(trained) == 3  # nothing lost, nothing counted twice
    assert len({t.user_attrs["spec_hash"] for t in trained}) == 3
    for t in after:
        if before.get(t.number) == "RUNNING":
            assert t.state.name == "FAIL" and t.user_attrs["failed_stage"] == "interrupted"
            (rerun,) = [r for r in after if r.user_attrs.get("rerun_of") == t.number]  # run again, once
            assert rerun.state.name == "COMPLETE" and rerun.params == t.params
        elif t.number in before and before[t.number] == "COMPLETE":
            assert t.state.name == "COMPLETE"  # kept as it was
    assert (out / "pareto.csv").exists()


_SLOW_DRIVER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {tests!r})
    from helpers import fake_evaluate
    from nas import run_search
    from nas.search import load_study

    def slow(spec, dataset, cfg, split="val"):  # the first driver's trials wait until the second trains one
        deadline = time.time() + 300
        while split == "val" and not os.path.exists({gate!r}) and time.time() < deadline:
            time.sleep(0.1)
        return fake_evaluate(spec, dataset, cfg, split)

    run_search(load_study({study!r}), {out!r}, storage={storage!r}, progress=False, evaluate=slow)
""")


def test_a_journal_study_is_refused_to_a_second_driver_unless_it_joins(tmp_path):
    """Driver A searches a journal-file study; driver B, started meanwhile on the same study, is
    refused in one line naming --join; joined, both search it together and the study ends with its
    trials, each spec trained once, from both drivers (the first one's trials wait until the second
    has trained one, so both train whatever the machine's speed)."""
    study_file = write_study(tmp_path / "s.yaml", trials=8, sampler="guided")
    journal = str(tmp_path / "shared.journal")
    gate = tmp_path / "second-trained"
    script = _SLOW_DRIVER.format(tests=str(Path(__file__).parent), study=str(study_file), out=str(tmp_path / "a"),
                                 storage=journal, gate=str(gate))
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=ENV)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and first.poll() is None:
            if os.path.exists(journal) and any(t.state.name == "RUNNING" for t in _trials(journal)):
                break
            time.sleep(0.2)
        assert first.poll() is None, first.stderr.read()[-2000:]
        config = load_study(study_file)
        with pytest.raises(ConfigError, match=r"is being searched by another driver \(.+:\d+, seen \d+ s ago\); pass --join"):
            run_search(config, tmp_path / "b", storage=journal, progress=False, evaluate=fake_evaluate)
        assert not (tmp_path / "b" / "pareto.csv").exists()

        def opens_the_gate(spec, dataset, cfg, split="val"):
            gate.touch()
            return fake_evaluate(spec, dataset, cfg, split)

        joined = run_search(config, tmp_path / "b", storage=journal, progress=False, evaluate=opens_the_gate, join=True)
        assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
    rows = [r for r in trial_rows(open_study(config, tmp_path, journal), config) if r["state"] == "complete"
            and not r["screened"]]
    workers = {r["worker"] for r in rows}
    assert len(workers) == 2  # both drivers trained trials of the one study
    assert len({r["spec_hash"] for r in rows}) == len(rows)  # none twice
    # each driver stopped when the study held its trials (the other's in flight counted as asked)
    # (the joined driver counts the study as it ends: the peer's last trial may finish after that)
    assert 8 <= len(rows) <= 9 and joined.trained >= 7
