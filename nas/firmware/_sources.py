"""The sources of the Arm build, at the versions TFLite Micro pins, fetched once and verified.

TFLite Micro (commit 90b983c2b) and the code its Makefile downloads for a Cortex-M build with
CMSIS-NN: CMSIS-NN, CMSIS 6 (Core), flatbuffers, gemmlowp, ruy, kissfft and eyalroz/printf, at the
versions `third_party_downloads.inc` and `ext_libs/*_download.sh` of that commit name.

Where they come from, first found wins:
    NAS_ARM_SOURCES=DIR   a folder of archives named `<repository>-<version>.tar.gz` (a mirror
                          made once, for machines without access to GitHub)
    NAS_ARM_MIRROR=URL    a server laid out as GitHub's archive URLs: URL/<owner>/<repo>/archive/<ref>.tar.gz
    github.com            the same URLs, on a user's machine

A GitHub archive is generated on demand, so the archive bytes are not what is pinned: the files are.
Each source keeps only the folders the build reads, and the tree of those files (paths, executable
bits and SHA-256 of each) must match the digest recorded here, or nothing is installed.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, DependencyError

__all__ = ["Source", "SOURCES", "TFLM_COMMIT", "tree_digest", "fetch_sources", "SOURCES_ENV", "MIRROR_ENV"]

SOURCES_ENV = "NAS_ARM_SOURCES"
MIRROR_ENV = "NAS_ARM_MIRROR"
_GITHUB = "https://github.com"
TFLM_COMMIT = "90b983c2b"


@dataclass(frozen=True)
class Source:
    name: str  # the folder TFLite Micro's Makefile expects under tools/make/downloads/ ("" for TFLite Micro)
    repository: str  # owner/name on GitHub
    ref: str  # the pinned commit or tag
    keep: tuple[str, ...]  # the paths the build reads (and the digest covers), relative to the archive's top folder
    digest: str  # tree_digest() of those paths
    patch: str = ""  # TFLite Micro's patch for it, relative to the TFLite Micro tree
    drop: tuple[str, ...] = ()  # file names TFLite Micro's download script deletes before patching

    @property
    def archive_stem(self) -> str:
        return f"{self.repository.split('/')[1]}-{self.ref}"


SOURCES: tuple[Source, ...] = (
    Source("", "tensorflow/tflite-micro", TFLM_COMMIT, ("LICENSE", "signal", "tensorflow", "third_party"),
           "ca01912c7f6ee225acfd004a24e6740dcfeba3690271e2065f345cebbe60d8ea"),
    Source("cmsis_nn", "ARM-software/CMSIS-NN", "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae", ("Include", "LICENSE", "Source"),
           "414cbf1eac15d6fbb5f329f9ab131e46522e91131a987f9043a372f2563c169a"),
    Source("cmsis", "ARM-software/CMSIS_6", "5782d6f8057906d360f4b95ec08a2354afe5c9b9", ("CMSIS/Core", "LICENSE"),
           "00c65bf0c36baeb1476d57872a9622b54201e94dbf317dfdecf3409e7176be9b"),
    Source("flatbuffers", "google/flatbuffers", "v25.9.23", ("LICENSE", "include"),
           "e303bc867c27198008de8ae572e185d6da1a918608aaa860bc36aabf083ccf94",
           patch="tensorflow/lite/micro/tools/make/flatbuffers.patch", drop=("BUILD", "BUILD.bazel")),
    Source("gemmlowp", "google/gemmlowp", "719139ce755a0f31cbf1c37f7f98adcc7fc9f425", ("LICENSE", "fixedpoint", "internal"),
           "2fc943e6a448f3c32b9e13b5e9b8a3223ead8071d03e505a14f09d6c34c6d520"),
    Source("ruy", "google/ruy", "d37128311b445e758136b8602d1bbd2a755e115d", ("LICENSE", "ruy/profiler"),
           "600c031a5e26e0c5db0aa7105dfb5ff18e85cc6a1f5c79bf2e862b24e99d50a0"),
    Source("kissfft", "mborgerding/kissfft", "v130", ("COPYING", "_kiss_fft_guts.h", "kiss_fft.c", "kiss_fft.h", "tools"),
           "f0dc53c89237e6145678e17de45419cd138628dbda0130ea9c91dc6013e470f5",
           patch="third_party/kissfft/kissfft.patch"),
    Source("eyalroz_printf", "eyalroz/printf", "f8ed5a9bd9fa8384430973465e94aa14c925872d", ("LICENSE", "src"),
           "b6ba4aab382e98a56fd724d74a7a4e5eefad5bcfe6afd54225fae655a6566911"),
)


def tree_digest(root: Path, keep: tuple[str, ...]) -> str:
    """SHA-256 over the sorted files under `keep` (relative path, executable bit, SHA-256 of the bytes)."""
    lines = []
    for top in keep:
        base = root / top
        if not base.exists():
            raise DataError(f"{root.name}: {top} is missing")
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink())
        for path in files:
            mode = "x" if os.access(path, os.X_OK) else "-"
            lines.append(f"{path.relative_to(root).as_posix()} {mode} {hashlib.sha256(path.read_bytes()).hexdigest()}")
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def _archive_bytes(source: Source, timeout_s: float) -> tuple[bytes, str]:
    """The source's archive and where it came from: a local mirror folder, a mirror server, or GitHub."""
    folder = os.environ.get(SOURCES_ENV)
    if folder:
        stem_prefix = source.repository.split("/")[1] + "-"
        for path in sorted(Path(folder).glob(f"{stem_prefix}*.tar.gz")):
            version = path.name[len(stem_prefix):-len(".tar.gz")]
            if version and source.ref.startswith(version):
                return path.read_bytes(), str(path)
    base = os.environ.get(MIRROR_ENV, _GITHUB).rstrip("/")
    url = f"{base}/{source.repository}/archive/{source.ref}.tar.gz"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.read(), url
    except (urllib.error.URLError, OSError) as exc:
        where = f" (and {SOURCES_ENV}={folder} has no {source.archive_stem}.tar.gz)" if folder else ""
        raise DataError(f"cannot download {url}: {getattr(exc, 'reason', exc)}{where}; on a machine without access to "
                        f"GitHub, put the archives in a folder and set {SOURCES_ENV} to it") from exc


def _extract(data: bytes, source: Source, dest: Path) -> None:
    """Unpack the archive's single top folder into `dest`, keeping only `source.keep`."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members}
        if len(tops) != 1:
            raise DataError(f"{source.archive_stem}: expected one top folder in the archive, found {sorted(tops)[:5]}")
        top = tops.pop()
        chosen = []
        for m in members:
            rel = m.name[len(top) + 1:]
            if not rel or not (m.isfile() or m.isdir()) or not any(rel == k or rel.startswith(k + "/") for k in source.keep):
                continue
            if rel.startswith("/") or ".." in rel.split("/"):
                raise DataError(f"{source.archive_stem}: the archive names a path outside its folder ({m.name})")
            m.name = rel
            chosen.append(m)
        try:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
                tar.extractall(dest, members=chosen, filter="data")
            else:  # only plain files and folders were chosen, their paths checked above
                tar.extractall(dest, members=chosen)
        except (tarfile.TarError, OSError) as exc:
            raise DataError(f"{source.archive_stem}: cannot unpack the archive: {exc}") from exc


def _patch(tree: Path, patch_file: Path) -> None:
    patch = shutil.which("patch")
    if patch is None:
        raise DependencyError("the Arm build needs `patch`: `sudo apt-get install patch`")
    import subprocess

    run = subprocess.run([patch, "-p1", "--forward", "--quiet", "-i", str(patch_file)], cwd=tree,
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise DataError(f"applying {patch_file.name} to {tree.name} failed: {(run.stdout + run.stderr).strip()[:300]}")


def fetch_sources(dest: Path, *, timeout_s: float = 120.0, progress=None) -> Path:
    """Install TFLite Micro with its downloads laid out as its Makefile expects, in `dest`
    (a new folder, renamed into place only when every source is verified). Returns the TFLite Micro tree."""
    pinned = "\n".join(f"{s.repository} {s.ref} {s.digest}" for s in SOURCES) + "\n"
    if (dest / ".complete").exists() and (dest / ".complete").read_text() == pinned:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".sources-", dir=dest.parent))
    try:
        downloads = work / "tensorflow/lite/micro/tools/make/downloads"
        for source in SOURCES:
            if progress:
                progress(source)
            data, origin = _archive_bytes(source, timeout_s)
            tree = work if not source.name else downloads / source.name
            tree.mkdir(parents=True, exist_ok=True)
            _extract(data, source, tree)
            digest = tree_digest(tree, source.keep)
            if digest != source.digest:
                raise DataError(f"{origin}: its files are not those of {source.repository} at {source.ref} "
                                f"(tree digest {digest[:12]}, expected {source.digest[:12]}); nothing was installed")
        for source in SOURCES:
            tree = downloads / source.name if source.name else work
            for name in source.drop:
                for path in tree.rglob(name):
                    path.unlink()
            if source.patch:
                _patch(tree, work / source.patch)
        for name in ("pigweed", "gcc_embedded"):  # present: TFLite Micro's Makefile does not download them
            (downloads / name).mkdir(exist_ok=True)
        (work / ".complete").write_text(pinned)
        if dest.exists():
            shutil.rmtree(dest)
        work.rename(dest)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return dest
