"""Readers for the standard dataset file formats, each checking what it reads.

IDX (`.gz` or raw, as Fashion-MNIST is distributed), MedMNIST `.npz` (read without pickle), and
folder trees with one sub-folder per class. Errors name the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["read_idx", "write_idx", "read_npz_splits", "read_image_folder", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array; checks magic, dimensions and length."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is corrupt or truncated: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path} has a truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path} is truncated or padded: header says shape {shape} ({expected} bytes of data), "
            f"file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    """Write unsigned bytes as an IDX file (gzipped, as Fashion-MNIST is distributed, by default)."""
    array = np.asarray(array)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    Path(path).write_bytes(gzip.compress(data, compresslevel=1) if gz else data)
    return Path(path)


def read_npz_splits(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MedMNIST-style `.npz`: `{split}_images` and `{split}_labels` for train/val/test."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:  # object arrays need pickle: refuse them
        raise DataError(f"{path} cannot be read without pickle ({exc}); refusing to unpickle user files") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} is corrupt or not an .npz file: {exc}") from None
    splits = {}
    for split in ("train", "val", "test"):
        xk, yk = f"{split}_images", f"{split}_labels"
        if xk not in arrays and yk not in arrays:
            continue
        if xk not in arrays or yk not in arrays:
            raise DataError(f"{path} has only one of {xk!r} and {yk!r}")
        x, y = arrays[xk], arrays[yk].reshape(-1) if arrays[yk].ndim == 2 and arrays[yk].shape[1] == 1 else arrays[yk]
        if y.ndim != 1:
            raise DataError(f"{path}: {yk} must hold one label per image, got shape {arrays[yk].shape}")
        splits[split] = (x, y)
    if "train" not in splits:
        raise DataError(f"{path} lacks 'train_images'/'train_labels'; keys found: {sorted(arrays)}")
    return splits


def read_image_folder(root: Path, class_names: list[str] | None, size: int, grey: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images under `root/<class>/`, resized to size x size, as uint8 (N, size, size, C)."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = class_names or found
    missing = [c for c in names if c not in found]
    if missing:
        raise DataError(f"{root} lacks class folder(s) {missing}; found {found}")
    images, labels = [], []
    for label, name in enumerate(names):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as img:
                    img = img.convert("L" if grey else "RGB").resize((size, size), Image.BILINEAR)
                    images.append(np.asarray(img, dtype=np.uint8))
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"{file} is not a readable image: {exc}") from None
            labels.append(label)
    if not images:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    x = np.stack(images)
    return (x[..., None] if grey else x), np.asarray(labels, np.int64), names
