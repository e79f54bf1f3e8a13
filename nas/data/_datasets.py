"""Datasets: one registry, loaders that read the standard files from a data folder, and the
preparation (resize, grey/RGB, normalisation) shared by training and every converted model.

Images are kept as uint8 NHWC at their stored size; `prepare` resizes them to a candidate's
resolution and scales to float32 in [0, 1]. Converted int8/int16 models take the same [0, 1]
input through their input tensor's scale and zero point, so normalisation is one function.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError, UnknownNameError
from ._augment import Augmentation, augmentation_for
from ._formats import read_idx, read_image_folder, read_npz_splits

__all__ = ["Dataset", "DATASETS", "load_dataset", "prepare", "dataset_names"]

MIN_PROVIDED_VAL = 50  # a provided validation split smaller than this is replaced by a stratified one


@dataclass(frozen=True)
class Dataset:
    name: str
    class_names: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    #: a teacher's class probabilities for each training image (knowledge distillation), or None
    teacher_probs: np.ndarray | None = field(default=None, repr=False, compare=False)
    teacher_name: str = ""  # which teacher gave `teacher_probs`

    @property
    def augmentation(self) -> Augmentation:
        """The augmentation the registry declares for this dataset (used when training asks for it)."""
        return augmentation_for(self.name)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of every split's images and labels (16 hex digits): the same data, split the same way."""
        digest = hashlib.sha256(self.name.encode())
        for array in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        return digest.hexdigest()[:16]

    def class_weights(self) -> dict[int, float]:
        """Balanced weights n / (k * count_c), so a 1:3 imbalance does not dominate training."""
        counts = np.bincount(self.y_train, minlength=self.num_classes).astype(float)
        present = counts > 0
        weights = np.zeros_like(counts)
        weights[present] = len(self.y_train) / (present.sum() * counts[present])
        return {i: float(w) for i, w in enumerate(weights)}

    def summary(self) -> dict:
        return {
            "name": self.name,
            "classes": list(self.class_names),
            "image_size": self.image_size,
            "channels": self.channels,
            "train": len(self.y_train),
            "val": len(self.y_val),
            "test": len(self.y_test),
            "source": self.source,
            "notes": list(self.notes),
        }


def prepare(x: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """uint8 NHWC images -> float32 in [0, 1] at `resolution`, with `channels` (1 or 3)."""
    if x.shape[-1] != channels:
        if channels == 3 and x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        elif channels == 1 and x.shape[-1] == 3:
            x = (x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        else:
            raise DataError(f"cannot convert {x.shape[-1]}-channel images to {channels} channels")
    if x.shape[1] == resolution and x.shape[2] == resolution:
        return x.astype(np.float32) / 255.0
    from ..backend import tf

    out = np.empty((len(x), resolution, resolution, channels), np.float32)
    for start in range(0, len(x), 4096):
        chunk = tf.image.resize(x[start : start + 4096].astype(np.float32), (resolution, resolution), antialias=True)
        out[start : start + 4096] = np.clip(chunk.numpy(), 0.0, 255.0) / 255.0
    return out


# --- checking and splitting -------------------------------------------------------------------
def _images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[1] != x.shape[2] or x.shape[1] < 4:
        raise DataError(f"{where}: expected square grey or RGB images (N, H, W[, 1|3]), got shape {x.shape}")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.number) or x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 255):
            raise DataError(f"{where}: pixel values must lie in [0, 255], got dtype {x.dtype}")
        x = x.astype(np.uint8)
    return x


def _labels(y: np.ndarray, n_images: int, num_classes: int, where: str) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if len(y) != n_images:
        raise DataError(f"{where}: {n_images} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{where}: labels must lie in [0, {num_classes - 1}], found {int(y.min())}..{int(y.max())}")
    return y.astype(np.int64)


def _stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) with `fraction` of every class held out (at least one if >1)."""
    keep, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = int(round(len(idx) * fraction))
        n = min(max(n, 1 if len(idx) > 1 else 0), len(idx) - 1) if len(idx) > 1 else 0
        held.append(idx[:n])
        keep.append(idx[n:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def _assemble(name: str, classes: list[str], splits: dict, source: str, seed: int, val_fraction: float) -> Dataset:
    k = len(classes)
    arrays = {}
    for split, (x, y) in splits.items():
        where = f"{source} ({split} split)"
        x = _images(np.asarray(x), where)
        arrays[split] = (x, _labels(np.asarray(y).reshape(-1) if np.ndim(y) > 1 else np.asarray(y), len(x), k, where))
    if len(arrays["train"][1]) == 0:
        raise DataError(f"{source}: the training split is empty")
    shapes = {a[0].shape[1:] for a in arrays.values()}
    if len(shapes) > 1:
        raise DataError(f"{source}: splits have different image shapes {sorted(shapes)}")
    rng = np.random.default_rng(seed)
    notes = []
    if "test" not in arrays:
        keep, held = _stratified_split(arrays["train"][1], 0.2, rng)
        x, y = arrays["train"]
        arrays["train"], arrays["test"] = (x[keep], y[keep]), (x[held], y[held])
        notes.append("no test split provided: a stratified 20% of train is held out as test")
    if "val" not in arrays or len(arrays["val"][1]) < MIN_PROVIDED_VAL:
        if "val" in arrays:
            notes.append(f"the provided validation split has only {len(arrays['val'][1])} samples: merged into train")
            arrays["train"] = tuple(np.concatenate([a, b]) for a, b in zip(arrays["train"], arrays.pop("val")))
        keep, held = _stratified_split(arrays["train"][1], val_fraction, rng)
        x, y = arrays["train"]
        arrays["train"], arrays["val"] = (x[keep], y[keep]), (x[held], y[held])
        notes.append(f"validation: a stratified {val_fraction:.0%} of train")
    return Dataset(
        name, tuple(classes), *arrays["train"], *arrays["val"], *arrays["test"], source=source, notes=tuple(notes)
    )


# --- loaders ----------------------------------------------------------------------------------
def _search_dirs(data_dir: str | os.PathLike | None, defaults: list[Path]) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    dirs = [Path(os.environ["NAS_DATA_DIR"]).expanduser()] if os.environ.get("NAS_DATA_DIR") else []
    return dirs + defaults


def _missing(name: str, wanted: str, dirs: list[Path]) -> DataError:
    where = ", ".join(str(d) for d in dirs)
    return DataError(f"dataset {name!r}: {wanted} not found in {where}; `nas datasets fetch {name}` downloads them, "
                     "or put the files there or pass --data-dir")


def _load_digits(data_dir, seed: int, val_fraction: float, image_size: int | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    rest, test = _stratified_split(y, 0.2, rng)
    return _assemble(
        "digits", [str(i) for i in range(10)], {"train": (x[rest], y[rest]), "test": (x[test], y[test])},
        "scikit-learn load_digits (8x8, bundled)", seed, val_fraction,
    )


_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _load_fashion_mnist(data_dir, seed: int, val_fraction: float, image_size: int | None) -> Dataset:
    dirs = _search_dirs(data_dir, [Path.home() / ".keras" / "datasets" / "fashion-mnist"])
    wanted = [f for pair in _FMNIST_FILES.values() for f in pair]
    for folder in dirs:
        if all((folder / f).is_file() for f in wanted):
            splits = {
                split: (read_idx(folder / xi), read_idx(folder / yi)) for split, (xi, yi) in _FMNIST_FILES.items()
            }
            return _assemble("fashion_mnist", FASHION_CLASSES, splits, str(folder), seed, val_fraction)
        present = [f for f in wanted if (folder / f).is_file()]
        if present:
            absent = [f for f in wanted if f not in present]
            raise DataError(f"dataset 'fashion_mnist': {folder} lacks {', '.join(absent)}")
    raise _missing("fashion_mnist", ", ".join(wanted), dirs)


def _medmnist_loader(name: str, stem: str, classes: list[str], folder_names: list[str]) -> Callable:
    def load(data_dir, seed: int, val_fraction: float, image_size: int | None) -> Dataset:
        dirs = _search_dirs(data_dir, [Path.home() / ".medmnist"])
        for folder in dirs:
            variants = sorted(folder.glob(f"{stem}*.npz")) if folder.is_dir() else []
            if variants:
                path = _pick_variant(variants, stem, image_size)
                return _assemble(name, classes, read_npz_splits(path), str(path), seed, val_fraction)
            for root in [folder / sub for sub in folder_names] + [folder]:
                if (root / "train").is_dir():
                    size = image_size or 224
                    splits = {}
                    for split in ("train", "val", "test"):
                        if (root / split).is_dir():
                            x, y, _ = read_image_folder(root / split, _folder_classes(root / "train", classes), size, grey=(stem != "dermamnist"))
                            splits[split] = (x, y)
                    return _assemble(name, classes, splits, str(root), seed, val_fraction)
        wanted = f"{stem}.npz (or {stem}_64/_128/_224.npz) or a folder tree {'|'.join(folder_names)}/train/<class>/"
        raise _missing(name, wanted, dirs)

    return load


def _folder_classes(train_root: Path, classes: list[str]) -> list[str]:
    """Class folders in the dataset's label order, matched case-insensitively."""
    found = {p.name.lower(): p.name for p in train_root.iterdir() if p.is_dir()}
    if all(c.lower() in found for c in classes):
        return [found[c.lower()] for c in classes]
    raise DataError(f"{train_root} must have one folder per class: {classes} (case-insensitive); found {sorted(found.values())}")


def _pick_variant(variants: list[Path], stem: str, image_size: int | None) -> Path:
    def size_of(p: Path) -> int:
        suffix = p.stem[len(stem):].lstrip("_")
        return int(suffix) if suffix.isdigit() else 28

    ordered = sorted(variants, key=size_of)
    if image_size is None:
        return ordered[0]
    big_enough = [p for p in ordered if size_of(p) >= image_size]
    return big_enough[0] if big_enough else ordered[-1]


DATASETS: dict[str, Callable] = {
    "digits": _load_digits,
    "fashion_mnist": _load_fashion_mnist,
    "pneumonia": _medmnist_loader("pneumonia", "pneumoniamnist", ["normal", "pneumonia"], ["chest_xray"]),
    "skin_lesion": _medmnist_loader(
        "skin_lesion", "dermamnist", ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"], ["ham10000", "HAM10000"]
    ),
}


def dataset_names() -> list[str]:
    return sorted(DATASETS)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    image_size: int | None = None,
) -> Dataset:
    """Load dataset `name` (see `dataset_names()`); `image_size` picks the stored size variant."""
    if name not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataError(f"data folder {data_dir} does not exist")
    return DATASETS[name](data_dir, seed, val_fraction, image_size)
