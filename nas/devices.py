"""Device profiles (`devices/*.yaml`): a target's runtime, memory, the quantization modes its
runtime runs, and where its latency figures come from.

Latency enters the search through one seam, `Device.latency_ms(result)`: today every shipped
profile takes the host measurement (LiteRT, 1 thread); calibrated latency models plug in here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._paths import catalog_file, catalog_names, load_yaml
from .errors import ConfigError
from .spec import QUANT_MODES

__all__ = ["Device", "load_device", "device_names"]

_LATENCY_SOURCES = ("host_measurement",)


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    runtime: str  # "litert" | "tflm"
    unit: str  # what latency figures mean: "ms"
    quantization: tuple[str, ...]  # modes its runtime runs
    latency_source: str
    calibration: str  # where its numbers come from, in words
    core: str = ""
    clock_mhz: float | None = None
    sram_kb: float | None = None
    flash_kb: float | None = None

    def runs(self, mode: str) -> bool:
        return mode in self.quantization

    def latency_ms(self, result) -> float | None:
        """The latency the search optimises for a measured candidate (the single seam)."""
        if self.latency_source == "host_measurement":
            return result.host_latency_ms
        raise AssertionError(self.latency_source)  # pragma: no cover - validated on load

    def predict_latency_ms(self, spec) -> float | None:
        """Latency predicted from the spec alone, before training; None where no model exists."""
        return None


def load_device(name: str) -> Device:
    path = catalog_file("devices", name)
    data = load_yaml(path)
    allowed = set(Device.__dataclass_fields__)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    modes = tuple(data.get("quantization", ()))
    bad = [m for m in modes if m not in QUANT_MODES]
    if bad or not modes:
        raise ConfigError(f"{path}: quantization {bad or modes} must be a non-empty subset of {list(QUANT_MODES)}")
    if data.get("latency_source") not in _LATENCY_SOURCES:
        raise ConfigError(f"{path}: latency_source must be one of {list(_LATENCY_SOURCES)}")
    try:
        return Device(**{**data, "quantization": modes})
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def device_names() -> list[str]:
    return catalog_names("devices")
