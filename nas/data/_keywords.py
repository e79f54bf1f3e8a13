"""A keyword-spotting dataset made with a text-to-speech engine (issue 36): `nas datasets synth-keywords`.

Real recordings of a new keyword do not exist, so open wake-word projects train on synthetic speech.
This writes one in the layout of Speech Commands (16 kHz, 16-bit mono WAV clips of one second, a
folder per label), with its splits made explicit: `DIR/{train,val,test}/<label>/*.wav`, the labels
being the words, `_silence_` (background only) and `_unknown_` (other words), as in MLPerf Tiny's
12-class convention. Every clip is spoken by eSpeak NG (the OS package `espeak-ng`) with a voice
variant (its timbre: ~100 ship with it), one of its English accents, a rate and a pitch drawn at
random, placed at a random offset in the second and mixed with noise at a random signal-to-noise
ratio (white, pink or brown noise made here, or a segment of the WAV files in `noise_dir`).

**The split is by voice**: each variant speaks in one split only, so test accuracy is measured on
voices the model never heard, not on memorised speakers. `DIR/manifest.json` names each split's
voices and what was drawn from; `DIR/clips.csv` has one row per clip with everything drawn for it.
The set is written to a sibling folder and renamed into place at the end: nothing half-written.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, DependencyError

__all__ = ["synth_keywords", "espeak_voices", "KeywordSet", "SILENCE", "UNKNOWN", "UNKNOWN_WORDS", "ACCENTS",
           "SAMPLE_RATE", "KEYWORDS_FORMAT"]

SAMPLE_RATE = 16000  # Speech Commands' and MLPerf Tiny's rate
SILENCE, UNKNOWN = "_silence_", "_unknown_"
KEYWORDS_FORMAT = "nas-keywords/1"
# Speech Commands v2's other words: the unknown class, as its 12-class convention draws it
UNKNOWN_WORDS = ("backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward", "four", "happy", "house",
                 "learn", "marvin", "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "visual", "wow", "zero")
# eSpeak NG's English accents (its own voices; the MBROLA ones need another package)
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-029")
NOISES = ("white", "pink", "brown")
NOT_VOICES = ("fast_test",)  # a variant for eSpeak's own tests: not a voice
INSTALL = "apt-get install espeak-ng (macOS: brew install espeak-ng)"
_WORD = re.compile(r"^[a-z][a-z']*$")
_ENGINE_RATE = 22050  # what eSpeak NG writes


@dataclass(frozen=True)
class KeywordSet:
    """What `synth_keywords` wrote: the folder and its manifest."""

    out: Path
    manifest: dict


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise DependencyError(f"espeak-ng is not installed; install it with: {INSTALL}")
    return path


def espeak_voices() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(eSpeak NG's version line, its English accents of ACCENTS, its voice variants), as installed."""
    exe = _espeak()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    listed = subprocess.run([exe, "--voices=en"], capture_output=True, text=True, timeout=30).stdout.split()
    accents = tuple(a for a in ACCENTS if a in listed)
    variants = []
    for line in subprocess.run([exe, "--voices=variant"], capture_output=True, text=True, timeout=30).stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("!v/"):
            name = fields[4][3:]
            if name not in NOT_VOICES:
                variants.append(name)
    return version.split("  Data at")[0], accents, tuple(sorted(set(variants)))


def _check(words, unknown_words, test_voices: int, val_voices: int, per_voice: int, snr_db, voices_available: int,
           train_voices: int | None) -> tuple[list[str], list[str]]:
    words = [w.strip().lower() for w in words]
    if not words:
        raise ConfigError("synth-keywords: name at least one keyword")
    bad = [w for w in words if not _WORD.match(w)]
    if bad:
        raise ConfigError(f"synth-keywords: {bad[0]!r} is not a word (letters and apostrophes only)")
    if len(set(words)) != len(words):
        raise ConfigError("synth-keywords: a keyword is named twice")
    unknown = [w for w in dict.fromkeys(u.strip().lower() for u in unknown_words) if w and w not in words]
    if any(not _WORD.match(w) for w in unknown):
        raise ConfigError("synth-keywords: an unknown word is not a word (letters and apostrophes only)")
    if test_voices < 1 or val_voices < 1 or per_voice < 1 or (train_voices is not None and train_voices < 1):
        raise ConfigError("synth-keywords: --test-voices, --val-voices, --train-voices and --per-voice must be 1 or more")
    lo, hi = snr_db
    if not lo <= hi:
        raise ConfigError(f"synth-keywords: --snr-db LOW,HIGH with LOW <= HIGH, got {lo:g},{hi:g}")
    wanted = test_voices + val_voices + (train_voices or 1)
    if wanted > voices_available:
        raise ConfigError(f"synth-keywords: {wanted} voices asked for (train, validation and test), eSpeak NG has "
                          f"{voices_available}")
    return words, unknown


def _speak(exe: str, text: str, accent: str, variant: str, rate: int, pitch: int, folder: str) -> np.ndarray:
    """The engine's samples (float, its own rate) of `text`."""
    handle, path = tempfile.mkstemp(suffix=".wav", dir=folder)
    os.close(handle)
    try:
        try:
            result = subprocess.run([exe, "-v", f"{accent}+{variant}", "-s", str(rate), "-p", str(pitch), "-w", path, text],
                                    capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise DataError(f"espeak-ng did not finish speaking {text!r} with voice {accent}+{variant} in 60 s") from None
        if result.returncode != 0 or not os.path.exists(path):
            raise DataError(f"espeak-ng could not speak {text!r} with voice {accent}+{variant}: "
                            f"{' '.join(result.stderr.split())[:200]}")
        rate_hz, mono16, audio = _read_wav(path)
    finally:
        if os.path.exists(path):
            os.remove(path)
    if not mono16 or rate_hz != _ENGINE_RATE:
        raise DataError(f"espeak-ng wrote other than 16-bit mono at {_ENGINE_RATE} Hz")
    return audio


def _read_wav(path) -> tuple[int, bool, np.ndarray]:
    """(sample rate, whether 16-bit mono, the samples in [-1, 1) if so)."""
    with wave.open(str(path)) as w:
        mono16 = w.getsampwidth() == 2 and w.getnchannels() == 1
        rate_hz, frames = w.getframerate(), w.readframes(w.getnframes())
    return rate_hz, mono16, np.frombuffer(frames if mono16 else b"", dtype="<i2").astype(np.float64) / 32768.0


def _to_clip(audio: np.ndarray, offset: float, level: float) -> tuple[np.ndarray, bool]:
    """The spoken part of `audio` at SAMPLE_RATE, its peak at `level`, placed at `offset` (0 to 1, of
    the room left) in one second; and whether it had to be cut (longer than a second)."""
    from scipy.signal import resample_poly

    x = resample_poly(audio, 320, 441)  # 22,050 Hz -> 16,000 Hz
    loud = np.flatnonzero(np.abs(x) > 0.02 * max(np.abs(x).max(), 1e-9))  # the word, without eSpeak's pauses
    x = x[loud[0]:loud[-1] + 1] if len(loud) else x[:0]
    cut = len(x) > SAMPLE_RATE
    if cut:  # the middle second
        start = (len(x) - SAMPLE_RATE) // 2
        x = x[start:start + SAMPLE_RATE]
    clip = np.zeros(SAMPLE_RATE)
    at = int(offset * (SAMPLE_RATE - len(x)))
    clip[at:at + len(x)] = x * (level / max(np.abs(x).max(), 1e-9)) if len(x) else 0.0
    return clip, cut


def _noise(kind: str, rng: np.random.Generator, files: list[np.ndarray]) -> np.ndarray:
    """One second of noise, unit RMS: generated (white, pink, brown) or a segment of a noise file."""
    n = SAMPLE_RATE
    if kind.startswith("file:"):
        source = files[int(kind[5:])]
        start = int(rng.integers(0, len(source) - n + 1))
        x = source[start:start + n].copy()
    elif kind == "white":
        x = rng.standard_normal(n)
    else:  # 1/f (pink) or 1/f^2 (brown) power, shaped in the frequency domain
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        x = np.fft.irfft(spectrum / (np.sqrt(f) if kind == "pink" else f), n)
    x = x - x.mean()
    return x / max(float(np.sqrt(np.mean(x ** 2))), 1e-12)


def _read_noise_dir(folder: Path) -> tuple[list[Path], list[np.ndarray]]:
    """The noise files of `folder` (WAV, 16-bit, mono at SAMPLE_RATE, a second or longer) and their samples."""
    files = sorted(folder.glob("*.wav"))
    if not folder.is_dir() or not files:
        raise ConfigError(f"--noise-dir {folder}: no .wav files there")
    out = []
    for path in files:
        try:
            rate_hz, mono16, x = _read_wav(path)
        except (wave.Error, EOFError, OSError) as exc:
            raise DataError(f"--noise-dir: {path.name} is not a readable WAV file: {exc}") from None
        if not mono16 or rate_hz != SAMPLE_RATE:
            raise DataError(f"--noise-dir: {path.name} must be 16-bit mono at {SAMPLE_RATE} Hz")
        if len(x) < SAMPLE_RATE:
            raise DataError(f"--noise-dir: {path.name} is shorter than a second")
        out.append(x)
    return files, out


def _write_wav(path: Path, clip: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(clip, -1.0, 32767 / 32768) * 32768).round().astype("<i2").tobytes())


def _plan(words, unknown, splits: dict[str, list[str]], accents, per_voice: int, rates, pitches, snr_db, noises,
          silence_per_voice: int, unknown_per_voice: int, rng: np.random.Generator) -> list[dict]:
    """Every clip to make, with everything drawn for it (in the order drawn: the seed decides all)."""
    clips = []
    for split, voices in splits.items():
        for voice in voices:
            jobs = [(w, w) for w in words for _ in range(per_voice)]
            jobs += [(UNKNOWN, unknown[int(rng.integers(len(unknown)))]) for _ in range(unknown_per_voice)]
            jobs += [(SILENCE, "") for _ in range(silence_per_voice)]
            for label, text in jobs:
                clips.append({"split": split, "label": label, "text": text, "voice": voice if text else "",
                              "accent": accents[int(rng.integers(len(accents)))] if text else "",
                              "rate_wpm": int(rng.integers(rates[0], rates[1] + 1)) if text else 0,
                              "pitch": int(rng.integers(pitches[0], pitches[1] + 1)) if text else 0,
                              "offset": float(rng.uniform()), "level": float(rng.uniform(0.3, 0.9)),
                              "noise": noises[int(rng.integers(len(noises)))],
                              # silence: the background alone, at a level drawn instead of an SNR
                              "snr_db": round(float(rng.uniform(*snr_db)), 2) if text else None,
                              "noise_dbfs": None if text else round(float(rng.uniform(-50.0, -20.0)), 2),
                              "seed": int(rng.integers(1 << 31))})
    return clips


def _make(exe: str, clip: dict, files: list[np.ndarray], scratch: str) -> tuple[np.ndarray, bool]:
    rng = np.random.default_rng(clip["seed"])
    noise = _noise(clip["noise"], rng, files)
    if not clip["text"]:
        return noise * 10 ** (clip["noise_dbfs"] / 20), False
    speech, cut = _to_clip(_speak(exe, clip["text"], clip["accent"], clip["voice"], clip["rate_wpm"], clip["pitch"], scratch),
                           clip["offset"], clip["level"])
    active = speech[np.abs(speech) > 0]
    power = float(np.mean(active ** 2)) if len(active) else 0.0  # the word's power, not the second's
    mix = speech + noise * np.sqrt(power / 10 ** (clip["snr_db"] / 10))
    return mix / max(1.0, float(np.abs(mix).max()) / 0.99), cut  # scaled, not clipped: the SNR stays as drawn


def synth_keywords(words, out: str | Path, *, unknown_words=UNKNOWN_WORDS, test_voices: int = 12, val_voices: int = 10,
                   train_voices: int | None = None, per_voice: int = 4, rates=(130, 200), pitches=(25, 75),
                   snr_db=(5.0, 30.0), noise_dir: str | Path | None = None, seed: int = 0, threads: int | None = None,
                   progress=None) -> KeywordSet:
    """Write a keyword dataset to `out` (a new folder): `per_voice` clips of every word per voice,
    and as many of `_unknown_` (drawn from `unknown_words`) and of `_silence_`; `test_voices` and
    `val_voices` voice variants held out for those splits, the rest (or `train_voices` of them) for
    training. `progress(done, total)` is called as clips are made."""
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} already exists; name a new folder")
    exe = _espeak()
    version, accents, variants = espeak_voices()
    if not accents or not variants:
        raise DependencyError(f"espeak-ng has no English voice or no voice variant installed ({version}); reinstall: {INSTALL}")
    words, unknown = _check(words, unknown_words, test_voices, val_voices, per_voice, snr_db, len(variants), train_voices)
    paths, files = _read_noise_dir(Path(noise_dir).expanduser()) if noise_dir is not None else ([], [])
    noises = tuple(f"file:{i}" for i in range(len(files))) if files else NOISES
    rng = np.random.default_rng(seed)
    order = [variants[i] for i in rng.permutation(len(variants))]
    rest = order[test_voices + val_voices:]
    splits = {"train": sorted(rest[:train_voices] if train_voices else rest), "val": sorted(order[test_voices:test_voices + val_voices]),
              "test": sorted(order[:test_voices])}
    others = per_voice if unknown else 0
    clips = _plan(words, unknown, splits, accents, per_voice, rates, pitches, snr_db, noises, per_voice, others, rng)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        labels = [*words, SILENCE, UNKNOWN] if unknown else [*words, SILENCE]
        for split in splits:
            for label in labels:
                (partial / split / label).mkdir(parents=True)
        counters: dict[tuple[str, str, str], int] = {}
        for clip in clips:
            key = (clip["split"], clip["label"], clip["voice"] or "noise")
            counters[key] = counters.get(key, 0) + 1
            clip["path"] = f"{clip['split']}/{clip['label']}/{key[2]}-{counters[key]:03d}.wav"
        done = 0
        cut = 0
        with tempfile.TemporaryDirectory(prefix="nas-espeak-") as scratch:
            pool = ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1)
            try:
                for clip, (audio, was_cut) in zip(clips, pool.map(lambda c: _make(exe, c, files, scratch), clips)):
                    _write_wav(partial / clip["path"], audio)
                    cut += was_cut
                    done += 1
                    if progress is not None:
                        progress(done, len(clips))
            finally:  # an error or Ctrl-C: the clips not started yet are not made
                pool.shutdown(wait=True, cancel_futures=True)
        manifest = {
            "format": KEYWORDS_FORMAT, "made_by": "nas datasets synth-keywords", "engine": version,
            "sample_rate": SAMPLE_RATE, "clip_seconds": 1.0, "labels": labels, "words": words, "unknown_words": unknown,
            "split_by": "voice (an eSpeak NG variant: each speaks in one split only)", "accents": list(accents),
            "rate_wpm": list(rates), "pitch": list(pitches), "snr_db": list(snr_db),
            "noise": [str(p) for p in paths] if files else list(NOISES),
            "seed": seed, "per_voice": per_voice, "clips_cut_to_a_second": cut,
            "splits": {split: {"voices": voices, "clips": sum(c["split"] == split for c in clips),
                               "per_label": {label: sum(c["split"] == split and c["label"] == label for c in clips)
                                             for label in labels}}
                       for split, voices in splits.items()},
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        with open(partial / "clips.csv", "w", newline="") as f:
            columns = ["path", "split", "label", "text", "voice", "accent", "rate_wpm", "pitch", "noise", "snr_db", "noise_dbfs"]
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(clips)
        umask = os.umask(0)
        os.umask(umask)
        partial.chmod(0o777 & ~umask)  # as a folder made by mkdir would be, not mkdtemp's owner-only
        if out.exists():
            out.rmdir()  # an empty folder given as --out
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return KeywordSet(out, manifest)
