"""`nas datasets fetch`: the study datasets' official files, downloaded, verified and installed where
`load_dataset` looks for them.

The URLs and checksums are the publishers': Fashion-MNIST's four IDX files as Keras serves them,
with the SHA-256 digests and sizes tensorflow-datasets 4.9.10 records for them
(`url_checksums/fashion_mnist.txt`), and MedMNIST's `.npz` files on Zenodo with the MD5 digests the
`medmnist` 3.0.2 package records (`medmnist/info.py`; that package is not a dependency: it pulls in
PyTorch). Keras' `get_file` was not used: it writes in place, keeps a file whose hash does not
match and names only the expected hash, and cannot resume; this downloader streams into
`<file>.part`, hashes while it reads, resumes with an HTTP Range request where the server allows,
and renames only a verified file into place.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError, UnknownNameError

__all__ = ["RemoteFile", "REMOTE_FILES", "MEDMNIST_SIZES", "MIRROR_ENV", "remote_files", "default_data_dir",
           "fetch_dataset", "download"]

MIRROR_ENV = "NAS_DATASET_MIRROR"
MEDMNIST_SIZES = (28, 64, 128, 224)
_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    name: str  # installed under this name, and served under it below a mirror's base URL
    url: str  # the official URL
    digest: str  # hex digest of the file's bytes
    algorithm: str  # "sha256" | "md5"
    size: int | None = None  # bytes, where the publisher gives it


_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_ZENODO = "https://zenodo.org/records/10519652/files/{name}?download=1"
_MEDMNIST_MD5 = {
    "pneumoniamnist": {28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
                       128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1"},
    "dermamnist": {28: "0744692d530f8e62ec473284d019b0c7", 64: "b70a2f5635c6199aeaa28c31d7202e1f",
                   128: "2defd784463fa5243564e855ed717de1", 224: "8974907d8e169bef5f5b96bc506ae45d"},
}


def _medmnist(stem: str) -> dict[int, tuple[RemoteFile, ...]]:
    out = {}
    for size, md5 in _MEDMNIST_MD5[stem].items():
        name = f"{stem}.npz" if size == 28 else f"{stem}_{size}.npz"
        out[size] = (RemoteFile(name, _ZENODO.format(name=name), md5, "md5"),)
    return out


#: dataset -> image size -> its files (Fashion-MNIST has one size, 28)
REMOTE_FILES: dict[str, dict[int, tuple[RemoteFile, ...]]] = {
    "fashion_mnist": {28: (
        RemoteFile("train-images-idx3-ubyte.gz", _KERAS + "train-images-idx3-ubyte.gz",
                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", "sha256", 26421880),
        RemoteFile("train-labels-idx1-ubyte.gz", _KERAS + "train-labels-idx1-ubyte.gz",
                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", "sha256", 29515),
        RemoteFile("t10k-images-idx3-ubyte.gz", _KERAS + "t10k-images-idx3-ubyte.gz",
                   "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", "sha256", 4422102),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _KERAS + "t10k-labels-idx1-ubyte.gz",
                   "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", "sha256", 5148),
    )},
    "pneumonia": _medmnist("pneumoniamnist"),
    "skin_lesion": _medmnist("dermamnist"),
}
_DEFAULT_DIRS = {"fashion_mnist": Path.home() / ".keras" / "datasets" / "fashion-mnist",
                 "pneumonia": Path.home() / ".medmnist", "skin_lesion": Path.home() / ".medmnist"}


def remote_files(name: str, size: int = 28) -> tuple[RemoteFile, ...]:
    """The files of dataset `name` at image `size`; UnknownNameError / ConfigError otherwise."""
    if name == "digits":
        raise ConfigError("dataset 'digits' ships with scikit-learn: there is nothing to fetch")
    if name not in REMOTE_FILES:
        raise UnknownNameError("downloadable dataset", name, REMOTE_FILES)
    sizes = REMOTE_FILES[name]
    if size not in sizes:
        raise ConfigError(f"dataset {name!r} is published at image size {', '.join(map(str, sizes))}, not {size}")
    return sizes[size]


def default_data_dir(name: str) -> Path:
    """Where `load_dataset` looks first when given no folder: $NAS_DATA_DIR, else the dataset's usual place."""
    return Path(os.environ["NAS_DATA_DIR"]).expanduser() if os.environ.get("NAS_DATA_DIR") else _DEFAULT_DIRS[name]


def fetch_dataset(name: str, data_dir: str | os.PathLike | None = None, *, mirror: str | None = None, size: int = 28,
                  progress: bool = True) -> list[Path]:
    """Download dataset `name`'s files into `data_dir` (default: where `load_dataset` looks), each
    verified against its published checksum; files already there and intact are kept. `mirror`
    (or $NAS_DATASET_MIRROR) replaces the publisher's base URL: the same file names under it."""
    files = remote_files(name, size)
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir(name)
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"data folder {folder} cannot be created: {exc.strerror or exc}") from None
    installed = []
    try:
        for remote in files:
            url = mirror.rstrip("/") + "/" + remote.name if mirror else remote.url
            installed.append(download(url, folder / remote.name, remote, progress=progress))
    except BaseException:
        if created and not any(folder.iterdir()):  # leave no trace of a fetch that installed nothing
            folder.rmdir()
        raise
    return installed


def _digest(path: Path, algorithm: str):
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher


def download(url: str, dest: Path, remote: RemoteFile, *, progress: bool = True, timeout_s: float = 60.0) -> Path:
    """`url` into `dest`, verified against `remote`'s checksum (DataError naming both digests on a
    mismatch, the partial file removed). An interrupted download leaves `<dest>.part`, which the
    next call resumes where the server honours a Range request."""
    if dest.is_file() and _digest(dest, remote.algorithm).hexdigest() == remote.digest:
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the part may be complete
            response = None
        else:
            raise DataError(f"cannot download {url}: HTTP {exc.code} {exc.reason}; download it by hand and place it at "
                            f"{dest} (its checksum is verified on the next run), or pass --mirror URL") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url}: {reason}; check the network or pass --mirror URL "
                        f"(or set {MIRROR_ENV}), or download it by hand and place it at {dest} "
                        "(its checksum is verified on the next run)") from None
    resumed = response is not None and response.status == 206
    hasher = _digest(part, remote.algorithm) if (resumed or response is None) and offset else hashlib.new(remote.algorithm)
    if response is not None:
        total = _total(response, offset if resumed else 0, remote.size)
        try:
            with response, open(part, "ab" if resumed else "wb") as out, _bar(dest.name, total, offset if resumed else 0, progress) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    hasher.update(chunk)
                    bar.update(len(chunk))
        except (OSError, urllib.error.URLError) as exc:
            raise DataError(f"the download of {dest.name} from {url} was interrupted ({exc}); run the same command "
                            "again to resume it") from None
        received = part.stat().st_size
        if total is not None and received < total:  # the connection closed early: keep the part to resume
            raise DataError(f"the download of {dest.name} from {url} was interrupted after {received:,} of {total:,} bytes; "
                            "run the same command again to resume it")
    actual = hasher.hexdigest()
    received = part.stat().st_size if part.exists() else 0
    if actual != remote.digest or (remote.size is not None and received != remote.size):
        part.unlink(missing_ok=True)
        raise DataError(f"{dest.name} from {url} does not match its published checksum: expected {remote.algorithm} "
                        f"{remote.digest}, got {actual} ({received:,} bytes); nothing was kept")
    os.replace(part, dest)
    return dest


def _total(response, already: int, size: int | None) -> int | None:
    length = response.headers.get("Content-Length")
    return already + int(length) if length and length.isdigit() else size


def _bar(name: str, total: int | None, initial: int, enabled: bool):
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr,
                disable=None if enabled else True, leave=False)  # None: off when stderr is no terminal
