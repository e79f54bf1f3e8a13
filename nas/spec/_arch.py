"""The architecture spec: a frozen, validated, JSON-round-trippable record with a stable hash.

A spec describes one MobileNetV2-style network (stem, inverted-residual stages, head) together
with its deployment settings (quantization mode, pruning sparsity). It knows nothing about
datasets: the number of input channels and classes are given when a model is built.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ..errors import ConfigError, UnknownNameError

__all__ = ["QUANT_MODES", "MAX_SPARSITY", "StageSpec", "ArchSpec"]

#: Deployment modes, in the order of the study's columns.
QUANT_MODES = ("float32", "float16", "dynamic_int8", "int8", "int16x8")
KERNEL_SIZES = (3, 5, 7)
MAX_SPARSITY = 0.95


def _check_int(where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{where}: {value} is out of range [{lo}, {hi}]")
    return value


@dataclass(frozen=True)
class StageSpec:
    """One stage of inverted-residual blocks; the first block applies `stride`."""

    depth: int
    channels: int
    expansion: int
    kernel: int
    stride: int

    def validate(self, where: str = "stage") -> None:
        _check_int(f"{where}.depth", self.depth, 1, 16)
        _check_int(f"{where}.channels", self.channels, 1, 4096)
        _check_int(f"{where}.expansion", self.expansion, 1, 16)
        _check_int(f"{where}.kernel", self.kernel, 1, 7)
        if self.kernel not in KERNEL_SIZES:
            raise ConfigError(f"{where}.kernel: {self.kernel} is not one of {list(KERNEL_SIZES)}")
        _check_int(f"{where}.stride", self.stride, 1, 2)


@dataclass(frozen=True)
class ArchSpec:
    """A candidate: architecture plus deployment settings. Validated on construction."""

    resolution: int
    stem_channels: int
    stem_stride: int
    stages: tuple[StageSpec, ...]
    head_channels: int = 0
    quantization: str = "int8"
    sparsity: float = 0.0
    _hash: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stages = tuple(s if isinstance(s, StageSpec) else _stage_from(s, i) for i, s in enumerate(self.stages))
        object.__setattr__(self, "stages", stages)
        if isinstance(self.sparsity, int) and not isinstance(self.sparsity, bool):
            object.__setattr__(self, "sparsity", float(self.sparsity))
        self.validate()
        object.__setattr__(self, "_hash", hashlib.sha256(self.to_json().encode()).hexdigest()[:16])

    def validate(self) -> None:
        _check_int("resolution", self.resolution, 8, 1024)
        _check_int("stem_channels", self.stem_channels, 1, 4096)
        _check_int("stem_stride", self.stem_stride, 1, 2)
        if not self.stages:
            raise ConfigError("stages: at least one stage is required")
        if len(self.stages) > 12:
            raise ConfigError(f"stages: at most 12 stages, got {len(self.stages)}")
        for i, stage in enumerate(self.stages):
            stage.validate(f"stages[{i}]")
        _check_int("head_channels", self.head_channels, 0, 8192)
        if self.quantization not in QUANT_MODES:
            raise UnknownNameError("quantization mode", self.quantization, QUANT_MODES)
        if isinstance(self.sparsity, bool) or not isinstance(self.sparsity, float):
            raise ConfigError(f"sparsity: expected a number, got {self.sparsity!r}")
        if not 0.0 <= self.sparsity <= MAX_SPARSITY:
            raise ConfigError(f"sparsity: {self.sparsity} is out of range [0, {MAX_SPARSITY}]")
        if self.final_size() < 1:
            raise ConfigError(
                f"resolution: {self.resolution} px is too small for total stride {self.total_stride()}"
            )

    # --- derived figures -------------------------------------------------------------------
    def total_stride(self) -> int:
        stride = self.stem_stride
        for stage in self.stages:
            stride *= stage.stride
        return stride

    def final_size(self) -> int:
        """Spatial size of the last feature map ('same' padding: ceil division per stride)."""
        size = self.resolution
        for s in (self.stem_stride, *(st.stride for st in self.stages)):
            size = -(-size // s)
        return size

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit identity of the spec (sha256 of its canonical JSON)."""
        return self._hash

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_hash")
        data["stages"] = [asdict(s) for s in self.stages]
        return data

    def to_json(self, indent: int | None = None) -> str:
        if indent is None:
            return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArchSpec":
        if not isinstance(data, Mapping):
            raise ConfigError(f"an architecture spec must be a JSON object, got {type(data).__name__}")
        allowed = {"resolution", "stem_channels", "stem_stride", "stages", "head_channels", "quantization", "sparsity"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"unknown spec field(s) {unknown}; allowed: {sorted(allowed)}")
        missing = sorted({"resolution", "stem_channels", "stem_stride", "stages"} - set(data))
        if missing:
            raise ConfigError(f"spec is missing field(s) {missing}")
        stages = data["stages"]
        if not isinstance(stages, (list, tuple)):
            raise ConfigError(f"stages: expected a list, got {stages!r}")
        return cls(**{**data, "stages": tuple(_stage_from(s, i) for i, s in enumerate(stages))})

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"spec is not valid JSON: {exc}") from None
        if isinstance(data, Mapping) and "spec" in data and isinstance(data["spec"], Mapping):
            data = data["spec"]  # accept the envelope written by `nas space sample`
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "ArchSpec":
        return ArchSpec.from_dict({**self.to_dict(), **changes})


def _stage_from(data: Any, index: int) -> StageSpec:
    if isinstance(data, StageSpec):
        return data
    where = f"stages[{index}]"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected an object, got {data!r}")
    fields = {"depth", "channels", "expansion", "kernel", "stride"}
    unknown, missing = sorted(set(data) - fields), sorted(fields - set(data))
    if unknown or missing:
        raise ConfigError(f"{where}: unknown fields {unknown}, missing fields {missing}")
    return StageSpec(**data)
