"""Budgets: the hard limits a search must meet (size and peak RAM in KB of 1024 bytes, latency in
the device's ms, energy per inference in the board's microjoules), as Optuna constraint values."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ..errors import ConfigError
from ..units import KB

__all__ = ["Budgets", "UNKNOWN"]

#: The constraint value of a budgeted quantity nobody measured: infeasible, as if 100% over.
UNKNOWN = 1.0


def _per_kb(value: float | None) -> float | None:
    return value / KB if value is not None else None


@dataclass(frozen=True)
class Budgets:
    max_size_kb: float | None = None
    max_ram_kb: float | None = None
    max_latency_ms: float | None = None
    max_energy_uj: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise ConfigError(f"budgets.{name}: expected a positive number, got {value!r}")

    def violations(self, size_bytes: float | None, peak_ram_bytes: float | None,
                   latency_ms: float | None, energy_uj: float | None = None) -> dict[str, float]:
        """Optuna constraint values per budget: <= 0 is feasible, > 0 the relative overshoot. A
        budgeted quantity that was not measured (None or NaN) is a violation of UNKNOWN: nothing
        is feasible on a figure nobody has."""
        out = {}
        for name, limit, value in (("size", self.max_size_kb, _per_kb(size_bytes)),
                                   ("ram", self.max_ram_kb, _per_kb(peak_ram_bytes)),
                                   ("latency", self.max_latency_ms, latency_ms),
                                   ("energy", self.max_energy_uj, energy_uj)):
            if limit is not None:
                known = value is not None and math.isfinite(value)
                out[name] = (value - limit) / limit if known else UNKNOWN
        return out

    def feasible(self, size_bytes: float | None, peak_ram_bytes: float | None, latency_ms: float | None,
                 energy_uj: float | None = None) -> bool:
        return all(v <= 0 for v in self.violations(size_bytes, peak_ram_bytes, latency_ms, energy_uj).values())

    def admits(self, metrics: Mapping[str, Any]) -> bool:
        """Whether a measured row (size_bytes, peak_ram_bytes, latency_ms, energy_uj) meets every budget."""
        return self.feasible(metrics.get("size_bytes"), metrics.get("peak_ram_bytes"), metrics.get("latency_ms"),
                             metrics.get("energy_uj"))
