"""Latency models: a model's cost as the sum of its kernels' costs.

Each kernel family (fused convolution, depthwise, fully connected, add, pooling, ...) is priced
from its features (MACs, filter taps, input and output elements, weights, one call), per
quantization mode, and a model's cost is the sum over its kernels plus a per-operator and a
per-inference overhead. Because the model is additive, it is fitted on whole-model measurements:
the design matrix holds each model's summed kernel features. Coefficients are non-negative
(no kernel makes a model faster), which keeps predictions positive and monotone in size.

`KernelCostModel` evaluates a fitted model (`macs-linear`, the floor, prices MACs alone; the
`kernel-nnls` regressors every kernel feature); `nas.calibration` fits it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["KernelCostModel", "row_macs"]

_MACS_FEATURES = ("conv:macs", "dwconv:macs", "fc:macs", "conv/hybrid:macs", "dwconv/hybrid:macs", "fc/hybrid:macs")


def row_macs(row: dict[str, float]) -> float:
    """A row's MACs: what the `macs-linear` floor prices."""
    if "graph:macs" in row:  # every row `features` makes carries it, whatever the kernel features
        return row["graph:macs"]
    return sum(row.get(name, 0.0) for name in _MACS_FEATURES)


@dataclass
class KernelCostModel:
    """Fitted coefficients for one quantization mode."""

    regressor: str
    coef: dict[str, float] = field(default_factory=dict)
    _families: tuple[int, frozenset[str]] | None = field(default=None, init=False, repr=False, compare=False)

    def predict(self, row: dict[str, float]) -> float:
        if self.regressor == "macs-linear":
            return self.coef["macs"] * row_macs(row) + self.coef["graph:n"]
        return float(sum(self.coef.get(name, 0.0) * value for name, value in row.items()))

    def families(self) -> frozenset[str] | None:
        """The kernel families (coefficient prefixes) the model was fitted on; None for the MACs floor."""
        if self.regressor == "macs-linear":
            return None
        if self._families is None or self._families[0] != len(self.coef):  # worked out once per fit
            self._families = (len(self.coef), frozenset(name.split(":")[0] for name in self.coef))
        return self._families[1]

    def unpriced(self, row: dict[str, float]) -> list[str]:
        """Kernel families present in `row` that this model never saw in calibration."""
        families = self.families()
        if families is None:
            return []
        return sorted({name.split(":")[0] for name, value in row.items() if value} - families)

    def to_dict(self) -> dict:
        return {"regressor": self.regressor, "coef": self.coef}

    @classmethod
    def from_dict(cls, data: dict) -> "KernelCostModel":
        return cls(data["regressor"], {k: float(v) for k, v in data["coef"].items()})
