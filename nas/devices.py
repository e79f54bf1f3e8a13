"""Device profiles (`devices/*.yaml`): a target's runtime, memory, the quantization modes its
runtime runs, its latency unit, and where its figures come from.

Latency sources:
    host_measurement   every candidate is timed on this host (LiteRT, 1 thread)
    model              a fitted latency model (`latency_models/<latency_model>.json`, written by
                       `nas calibrate`) predicts from the model's kernels, before or after training

Units: "ms" for time; "instructions" for the instruction-count rulers (`host-*-icount`), which
are what latency models are validated against. A search optimises time, so it needs an "ms" device.
Latency enters the search through one seam, `Device.latency_ms(result)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ._paths import catalog_dirs, catalog_file, catalog_names, load_yaml
from .errors import ConfigError
from .spec import QUANT_MODES, ArchSpec

__all__ = ["Device", "load_device", "device_names", "load_artifact", "artifact_path"]

_LATENCY_SOURCES = ("host_measurement", "model")
_UNITS = ("ms", "instructions")
_RUNTIMES = ("litert", "tflm", "xcubeai")
_MEASURES = ("", "icount", "wallclock", "published")


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    runtime: str  # "litert" | "tflm" | "xcubeai"
    unit: str  # "ms" | "instructions"
    quantization: tuple[str, ...]  # modes its runtime runs
    latency_source: str
    calibration: str  # where its numbers come from, in words
    core: str = ""
    clock_mhz: float | None = None
    sram_kb: float | None = None
    flash_kb: float | None = None
    measure: str = ""  # how `nas calibrate` measures it: icount, wallclock, published (MCU timings)
    latency_model: str = ""  # artifact name in latency_models/ (without .json)
    base_device: str = ""  # microcontrollers: the instruction-count device that gives the cost's shape
    board: str = ""  # microcontrollers: the `board` and `runtime` of their rows in mcu_timings.csv
    board_runtime: str = ""

    def runs(self, mode: str) -> bool:
        return mode in self.quantization

    @property
    def artifact(self) -> dict | None:
        """The fitted latency model, or None when it has not been calibrated yet."""
        return load_artifact(self.latency_model) if self.latency_model else None

    def latency_ms(self, result) -> float | None:
        """The latency the search optimises for a measured candidate (the single seam)."""
        if self.latency_source == "host_measurement":
            return result.host_latency_ms
        if self.unit != "ms" or not getattr(result, "tflite", None):
            return None
        return self.predict(result.tflite).get("latency_ms")

    def predict_latency_ms(self, spec: ArchSpec, in_channels: int, num_classes: int) -> float | None:
        """Latency predicted from the spec alone, before training; None where no model applies."""
        if not self.latency_model or self.unit != "ms" or self.artifact is None:
            return None
        return self.predict(spec, in_channels, num_classes).get("latency_ms")

    def predict(self, source: ArchSpec | bytes | str | Path, in_channels: int | None = None,
                num_classes: int | None = None) -> dict:
        """Predict one model (a spec, or .tflite bytes or path) on this device.

        Returns {"mode", "runs": True, "latency_ms" or "instructions", "arena_bytes"?} or, for a model
        the device cannot run or price, {"mode", "runs": False, "reason"}. Raises ConfigError when
        the device has no fitted latency model."""
        from .kernels import features, kernels_from_spec, kernels_from_tflite, model_mode, read_tflite

        if isinstance(source, ArchSpec):
            if in_channels is None or num_classes is None:
                raise ConfigError("predicting a spec needs its input channels and number of classes")
            mode, tflite, parsed = source.quantization, None, None
        else:
            tflite = read_tflite(source)  # read once: kernels, mode and arena all come from it
            parsed = kernels_from_tflite(tflite)
            mode = model_mode(parsed)
        artifact = self.artifact
        if artifact is None:
            raise ConfigError(f"device {self.name} has no latency model: "
                              + (f"run `nas calibrate --device {self.name}`" if self.latency_model
                                 else "its latency is measured per candidate on the host"))
        out: dict = {"mode": mode}
        if not self.runs(mode):
            return {**out, "runs": False, "reason": f"{self.name} ({self.runtime}) does not run {mode} models; "
                                                    f"it runs {', '.join(self.quantization)}"}
        if artifact.get("kind") == "scaled-instructions":
            base = load_device(artifact["base_device"]).predict(tflite if tflite is not None else source, in_channels, num_classes)
            if not base["runs"]:
                return {**out, "runs": False, "reason": base["reason"]}
            out.update(runs=True, latency_ms=base["instructions"] * artifact["ms_per_instruction"])
            if "arena_bytes" in base and self.runtime == "tflm":
                out["arena_bytes"] = base["arena_bytes"]
            return out
        from .latency import KernelCostModel

        fitted = artifact.get("modes", {}).get(mode)
        if fitted is None:
            return {**out, "runs": False, "reason": f"{self.name}'s latency model was not calibrated for {mode}"}
        model = KernelCostModel.from_dict(fitted)
        kernels = parsed if parsed is not None else kernels_from_spec(source, in_channels, num_classes)
        row = features(kernels, artifact.get("feature_set", "kernel"))
        unpriced = model.unpriced(row)
        if unpriced:
            return {**out, "runs": False, "reason": f"operators not seen in {self.name}'s calibration: {', '.join(unpriced)}"}
        out.update({"runs": True, ("latency_ms" if self.unit == "ms" else "instructions"): model.predict(row)})
        fitted_arena = (artifact.get("arena") or {}).get("modes", {}).get(mode)
        if fitted_arena and tflite is not None:
            from .arena import arena_features, predict_arena

            out["arena_bytes"] = predict_arena(arena_features(tflite), fitted_arena)
        return out


def artifact_path(name: str) -> Path:
    """Where the artifact `name` is read from (or, when absent, written by default)."""
    for folder in catalog_dirs("latency_models"):
        if (folder / f"{name}.json").is_file():
            return folder / f"{name}.json"
    folders = catalog_dirs("latency_models")
    if not folders:
        raise ConfigError("no latency_models catalog folder found; set NAS_CATALOG_DIR")
    return folders[0] / f"{name}.json"


@lru_cache(maxsize=None)
def _read_artifact(path: str, mtime: float) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read latency model {path}: {exc}") from None


def load_artifact(name: str) -> dict | None:
    path = artifact_path(name)
    if not path.is_file():
        return None
    return _read_artifact(str(path), path.stat().st_mtime)


def load_device(name: str) -> Device:
    path = catalog_file("devices", name)
    return _device_from_file(str(path), path.stat().st_mtime)


@lru_cache(maxsize=None)
def _device_from_file(where: str, mtime: float) -> Device:
    """Parsed once per file version: predictions look devices up per call (microcontroller -> base)."""
    path = Path(where)
    data = load_yaml(path)
    allowed = set(Device.__dataclass_fields__)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    modes = tuple(data.get("quantization", ()))
    bad = [m for m in modes if m not in QUANT_MODES]
    if bad or not modes:
        raise ConfigError(f"{path}: quantization {bad or modes} must be a non-empty subset of {list(QUANT_MODES)}")
    for key, valid in (("latency_source", _LATENCY_SOURCES), ("unit", _UNITS), ("runtime", _RUNTIMES),
                       ("measure", _MEASURES)):
        if data.get(key, "") not in valid:
            raise ConfigError(f"{path}: {key} must be one of {[v for v in valid if v]}")
    if data["latency_source"] == "model" and not data.get("latency_model"):
        raise ConfigError(f"{path}: latency_source model needs latency_model (an artifact name)")
    try:
        return Device(**{**data, "quantization": modes})
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def device_names() -> list[str]:
    return catalog_names("devices")
