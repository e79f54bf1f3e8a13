"""A keyword set spoken by eSpeak NG (issue 36): the split by voice, the clips, the noise, bad input.

eSpeak NG comes from the OS package (`make audio-deps`); CI sets NAS_REQUIRE_AUDIO=1 so that a
missing engine fails rather than skips."""

import csv
import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest

from nas.data import SAMPLE_RATE, SILENCE, UNKNOWN, synth_keywords
from nas.data import _keywords

if shutil.which("espeak-ng") is None:
    if os.environ.get("NAS_REQUIRE_AUDIO"):
        pytest.fail("espeak-ng is not installed (make audio-deps installs it)", pytrace=False)
    pytest.skip("espeak-ng is not installed (make audio-deps installs it)", allow_module_level=True)

ENV = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
SMALL = dict(test_voices=2, val_voices=2, train_voices=3, per_voice=1, unknown_words=("cat", "dog", "yes"))


def read_wav(path):
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return synth_keywords(["yes", "no"], tmp_path_factory.mktemp("kw") / "set", seed=3, **SMALL)


def test_the_set_is_split_by_voice_and_its_manifest_says_so(made):
    manifest = json.loads((made.out / "manifest.json").read_text())
    assert manifest == made.manifest and manifest["format"] == "nas-keywords/1"
    assert manifest["labels"] == ["yes", "no", SILENCE, UNKNOWN]
    assert manifest["unknown_words"] == ["cat", "dog"]  # a keyword is never an unknown word
    voices = {name: set(split["voices"]) for name, split in manifest["splits"].items()}
    assert [len(voices[s]) for s in ("train", "val", "test")] == [3, 2, 2]
    assert not (voices["train"] & voices["test"] or voices["train"] & voices["val"] or voices["val"] & voices["test"])
    with open(made.out / "clips.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(s["clips"] for s in manifest["splits"].values()) == 7 * 4
    files = sorted(str(p.relative_to(made.out)) for p in made.out.rglob("*.wav"))
    assert files == sorted(r["path"] for r in rows)
    for row in rows:  # each clip is where its split and label say, spoken by a voice of that split
        split, label = row["path"].split("/")[:2]
        assert (split, label) == (row["split"], row["label"])
        if label != SILENCE:
            assert row["voice"] in voices[split] and row["accent"] in _keywords.ACCENTS
            assert row["text"] == (label if label != UNKNOWN else row["text"]) and row["text"] in ("yes", "no", "cat", "dog")
        else:
            assert row["text"] == "" and row["voice"] == ""
    for split in ("train", "val", "test"):
        assert manifest["splits"][split]["per_label"] == {"yes": len(voices[split]), "no": len(voices[split]),
                                                          SILENCE: len(voices[split]), UNKNOWN: len(voices[split])}


def test_every_clip_is_a_second_of_16_khz_speech_or_background(made):
    with open(made.out / "clips.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        x = read_wav(made.out / row["path"]).astype(float) / 32768
        assert len(x) == SAMPLE_RATE and np.abs(x).max() < 1.0
        rms_db = 10 * np.log10(np.mean(x ** 2))
        if row["label"] == SILENCE:  # the background alone, at the level drawn
            assert rms_db == pytest.approx(float(row["noise_dbfs"]), abs=0.5)
        else:  # a word: far louder than its noise floor at any SNR drawn (5 to 30 dB)
            assert np.abs(x).max() > 0.25 and rms_db > -35


def test_the_noise_is_mixed_at_the_snr_drawn(tmp_path):
    clip = {"text": "stop", "voice": "m3", "accent": "en-us", "rate_wpm": 160, "pitch": 50, "offset": 0.3, "level": 0.6,
            "noise": "pink", "snr_db": 7.5, "noise_dbfs": None, "seed": 11}
    mixed, _ = _keywords._make(shutil.which("espeak-ng"), clip, [], str(tmp_path))
    speech, cut = _keywords._to_clip(_keywords._speak(shutil.which("espeak-ng"), "stop", "en-us", "m3", 160, 50, str(tmp_path)),
                                     0.3, 0.6)
    noise = mixed - speech
    active = speech[np.abs(speech) > 0]
    snr = 10 * np.log10(np.mean(active ** 2) / np.mean(noise ** 2))
    assert snr == pytest.approx(7.5, abs=0.01) and not cut
    assert np.abs(speech).max() == pytest.approx(0.6)
    loud = np.flatnonzero(np.abs(speech) > 0)
    assert loud[0] == int(0.3 * (SAMPLE_RATE - (loud[-1] - loud[0] + 1)))  # at the offset drawn


def test_the_same_seed_makes_the_same_set(made, tmp_path):
    again = synth_keywords(["yes", "no"], tmp_path / "again", seed=3, **SMALL)
    assert again.manifest == made.manifest
    for path in made.out.rglob("*.wav"):
        assert (again.out / path.relative_to(made.out)).read_bytes() == path.read_bytes()


def test_noise_files_are_mixed_in_and_bad_ones_refused(tmp_path):
    folder = tmp_path / "noise"
    folder.mkdir()
    hum = (0.3 * np.sin(2 * np.pi * 50 * np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE) * 32767).astype("<i2")
    with wave.open(str(folder / "hum.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SAMPLE_RATE), w.writeframes(hum.tobytes())
    made = synth_keywords(["go"], tmp_path / "set", noise_dir=folder, **{**SMALL, "unknown_words": ()})
    assert made.manifest["noise"] == [str(folder / "hum.wav")] and made.manifest["labels"] == ["go", SILENCE]
    silence = read_wav(next((made.out / "test" / SILENCE).glob("*.wav"))).astype(float)
    spectrum = np.abs(np.fft.rfft(silence))
    assert np.argmax(spectrum) == 50  # the hum, at 50 Hz (1 Hz bins over one second)
    with wave.open(str(folder / "stereo.wav"), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(SAMPLE_RATE), w.writeframes(bytes(4 * SAMPLE_RATE))
    with pytest.raises(Exception, match="must be 16-bit mono at 16000 Hz"):
        synth_keywords(["go"], tmp_path / "other", noise_dir=folder, **SMALL)
    assert not (tmp_path / "other").exists()


def nas(*args, env=ENV):
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, env=env, timeout=600)


def test_the_command_writes_the_set_and_bad_input_is_one_line(tmp_path):
    out = tmp_path / "kw"
    result = nas("datasets", "synth-keywords", "up", "down", "--out", str(out), "--test-voices", "2", "--val-voices", "1",
                 "--train-voices", "2", "--per-voice", "1", "--unknown-words", "cat", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["out"] == str(out) and summary["splits"]["test"]["clips"] == 2 * 4
    assert (out / "manifest.json").is_file()
    for args, message in (
            (("up", "--out", str(out)), "already exists; name a new folder"),
            (("Up!", "--out", str(tmp_path / "a")), "is not a word"),
            (("up", "up", "--out", str(tmp_path / "b")), "a keyword is named twice"),
            (("up", "--out", str(tmp_path / "c"), "--test-voices", "500"), "voices asked for"),
            (("up", "--out", str(tmp_path / "d"), "--snr-db", "20,5"), "LOW <= HIGH"),
            (("up", "--out", str(tmp_path / "e"), "--noise-dir", str(tmp_path)), "no .wav files there")):
        result = nas("datasets", "synth-keywords", *args)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for name in "abcde":
        assert not (tmp_path / name).exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]  # nothing half-written
    result = nas("datasets", "synth-keywords", "up", "--out", str(tmp_path / "f"), env={**ENV, "PATH": os.path.dirname(sys.executable)})
    assert result.returncode != 0 and "espeak-ng is not installed" in result.stderr and "apt-get install espeak-ng" in result.stderr
    assert not (tmp_path / "f").exists()


def test_a_failure_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    from nas.errors import DataError

    calls = []
    real = _keywords._speak

    def fails_on_the_fifth(*args):
        calls.append(1)
        if len(calls) == 5:
            raise DataError("espeak-ng could not speak (a test)")
        return real(*args)

    monkeypatch.setattr(_keywords, "_speak", fails_on_the_fifth)
    with pytest.raises(DataError, match="a test"):
        synth_keywords(["yes", "no"], tmp_path / "set", threads=1, **SMALL)
    assert list(tmp_path.iterdir()) == []  # no set, no partial folder
    assert len(calls) < 10  # the clips after the failure were not made


def test_the_set_is_readable_by_others_as_a_made_folder_is(made):
    mask = os.umask(0)
    os.umask(mask)
    assert made.out.stat().st_mode & 0o777 == 0o777 & ~mask
