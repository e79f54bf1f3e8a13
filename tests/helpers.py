"""Test helpers in one place: tiny datasets written in the real file formats, fixed specs, and the
mark for tests of the Arm build."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nas.data import write_idx  # noqa: F401 - tests import it from here too
from nas.spec import ArchSpec

def _arm_missing() -> str:
    """Why the Arm build cannot run here ('' when it can): the OS's toolchain, or the sources."""
    from nas.errors import DependencyError
    from nas.firmware import TFLM_COMMIT, cache_root, require_toolchain

    try:
        require_toolchain()
    except DependencyError as exc:
        return str(exc)
    if not os.environ.get("NAS_ARM_SOURCES") and not (cache_root() / TFLM_COMMIT / "src" / ".complete").exists():
        return "no Arm sources here: set NAS_ARM_SOURCES to a folder of the pinned archives"
    return ""


_ARM_MISSING = _arm_missing()
#: Tests of the Arm build: skipped without the toolchain or sources, unless NAS_REQUIRE_ARM=1 (.ci/run
#: sets it once it installed them), where they must run and pass.
arm = pytest.mark.skipif(bool(_ARM_MISSING) and os.environ.get("NAS_REQUIRE_ARM") != "1", reason=_ARM_MISSING or "ready")

#: A small spec whose layers are large enough for every quantization mode to act on its weights.
TINY_SPEC = ArchSpec.from_dict({
    "resolution": 16, "stem_channels": 16, "stem_stride": 1, "head_channels": 64,
    "stages": [
        {"depth": 1, "channels": 16, "expansion": 1, "kernel": 3, "stride": 1},
        {"depth": 2, "channels": 32, "expansion": 4, "kernel": 3, "stride": 2},
        {"depth": 1, "channels": 48, "expansion": 4, "kernel": 3, "stride": 2},
    ],
})


def images(n: int, size: int, channels: int | None = None, seed: int = 0, classes: int = 10):
    """Class-dependent blobs (learnable), uint8, (n, size, size[, channels])."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 40, (n, size, size), dtype=np.int64)
    for i, label in enumerate(y):
        r = (label * size) // classes
        x[i, r : r + max(1, size // classes), :] += 200
    x = np.clip(x, 0, 255).astype(np.uint8)
    if channels:
        x = np.repeat(x[..., None], channels, axis=-1)
    return x, y.astype(np.uint8)


def write_fashion_mnist(folder: Path, n_train: int = 300, n_test: int = 100) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = images(n_train, 28)
    write_idx(folder / "train-images-idx3-ubyte.gz", x)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y)
    x, y = images(n_test, 28, seed=1)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y)
    return folder


def write_medmnist(path: Path, classes: int, rgb: bool, size: int = 28, n: tuple[int, int, int] = (140, 70, 70)) -> Path:
    arrays = {}
    for split, count, seed in zip(("train", "val", "test"), n, (0, 1, 2)):
        x, y = images(count, size, 3 if rgb else None, seed=seed, classes=classes)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y.reshape(-1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def write_image_tree(root: Path, class_names: list[str], per_class: int = 6, size: int = 20) -> Path:
    from PIL import Image

    for split in ("train", "test"):
        for c, name in enumerate(class_names):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            x, _ = images(per_class, size, seed=c, classes=len(class_names))
            for i, img in enumerate(x):
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def write_study(path: Path, **changes) -> Path:
    """A small real study on digits: a few seconds per trial on 2 cores."""
    import yaml

    study = {
        "name": "tiny_test",
        "dataset": "digits",
        "space": "mobilenet_tiny",
        "device": "host-tflm",
        "budgets": {"max_size_kb": 40, "max_ram_kb": 48, "max_latency_ms": 50},
        "trials": 3,
        "sampler": "tpe",
        "seed": 0,
        "proxy": {"epochs": 2, "patience": 1},
        "final": {"epochs": 3, "patience": 2},
        "final_top_k": 2,
        "space_overrides": {"resolution": [28], "stem_stride": [2], "num_stages": [2, 3],
                            "quantization": [int8 for int8 in ("int8", "float16")], "sparsity": [0.0]},
    }
    for key, value in changes.items():
        study[key] = value
    path.write_text(yaml.safe_dump(study))
    return path


def fake_evaluate(spec, dataset, cfg, split="val"):
    """A stand-in for training, for tests of the search logic: deterministic metrics from the
    spec's analytic costs, a real CandidateResult, no training or conversion. Its test accuracy
    ranks models in the opposite order to its validation accuracy, so a selection that looked at
    test would be caught."""
    from nas.candidate import CandidateResult
    from nas.spec import activation_peak_bytes, count_macs, count_params, weight_bytes

    c, k = dataset.channels, dataset.num_classes
    macs = count_macs(spec, c, k)
    accuracy = min(0.99, 0.5 + macs / 4e6)
    test_accuracy = accuracy if split == "val" else round(1.0 - accuracy / 2, 4)  # test ranks the other way round
    return CandidateResult(
        spec, dataset.name, split=split, accuracy=test_accuracy, float_accuracy=test_accuracy, val_accuracy=accuracy,
        float_val_accuracy=accuracy, val_samples=len(dataset.y_val),
        eval_samples=len(dataset.y_val if split == "val" else dataset.y_test),
        size_bytes=int(weight_bytes(spec, c, k)) + 4000, params=count_params(spec, c, k), macs=macs,
        peak_ram_bytes=activation_peak_bytes(spec, c, k) + 2000, peak_ram_source="activation_estimate",
        host_latency_ms=macs / 1e6, tflm_compatible=True, weight_sparsity=0.0, epochs_run=cfg.epochs,
        tflite=b"not a real model",
    )
