"""What a spec will cost, before it trains: its size, arena, latency and energy on the study's
device, as points in the budget box, and a descriptor of its scale for space-filling designs and
surrogates. Both cost about a millisecond a spec, so thousands of specs can be weighed per trial.

Size and arena are the analytic lower bounds (weight bytes, activation peak) plus what a converted
model adds beyond them, linear in its convolution channels and layers: per-channel quantization
parameters and biases, tensor and operator records. The coefficients start from what 16 int8
digits models measured (size within 2.8%, arena within 9.2% of the exact figures) and are refitted per
quantization mode, by ridge regression towards that start, on the study's own trained trials."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..spec import ArchSpec, activation_peak_bytes, count_macs, count_params, plan, weight_bytes
from ..units import KB
from ._study import StudyConfig

__all__ = ["Estimate", "Estimator", "OVERHEAD_PRIOR", "fill_unknown"]

#: bytes beyond the lower bounds per (convolution output channel, layer, model), int8 digits models:
#: .tflite size over weight bytes, TFLite Micro arena over the activation peak
OVERHEAD_PRIOR = {"size_bytes": (25.0, 560.0, 1320.0), "peak_ram_bytes": (6.6, 280.0, 1370.0)}
_PRIOR_WEIGHT = np.array([300.0, 15.0, 1.0])  # one pseudo-observation of a typical model per coefficient


@dataclass(frozen=True)
class Estimate:
    """One spec before training: analytic costs (lower bounds for size and RAM, the device's
    predicted latency) and its descriptor."""

    spec: ArchSpec
    weight_bytes: float
    activation_bytes: float
    latency_ms: float | None
    descriptor: tuple[float, ...]
    structure: tuple[float, float, float] = (0.0, 0.0, 1.0)  # (convolution output channels, layers, 1)


class Estimator:
    """Cheap objectives of specs for one study: `estimate(spec)`, then `box(estimates, corrections,
    scales)` puts them in the budget box (each minimised objective over `scales`: its budget, or the
    largest value seen where it has none), with size and arena calibrated by `corrections` (the
    overhead coefficients refitted on measured rows). A spec is estimated once: every ask weighs the
    study's trained specs again (calibration, surrogate, halving), and an estimate never changes."""

    def __init__(self, config: StudyConfig, space, device, in_channels: int, num_classes: int):
        self.config, self.device = config, device
        self.in_channels, self.num_classes = in_channels, num_classes
        self.modes = tuple(space.choices["quantization"])
        self.cheap = tuple(o for o in config.objectives if o != "accuracy")
        self._estimates: dict[str, Estimate] = {}  # spec hash -> its estimate
        # what a stored trial's record gives, kept per (trial, spec hash): a record never changes once told,
        # and a study of thousands is read on every ask
        self._points: dict[tuple, list] = {}  # -> its calibration points
        self._measured: dict[tuple, tuple] = {}  # -> its measured cheap objectives (NaN where not measured)
        self._admits: dict[tuple, bool] = {}  # -> whether it meets every budget
        self._fitted: tuple[int, dict] | None = None  # (rows, corrections) of `growing_corrections`

    def estimate(self, spec: ArchSpec) -> Estimate:
        est = self._estimates.get(spec.hash)
        if est is None:
            est = self._estimates[spec.hash] = self._estimate(spec)
        return est

    def estimate_row(self, row: Mapping) -> Estimate:
        """The estimate of a trial record's spec (`spec`, and `spec_hash`, which spares parsing one estimated before)."""
        est = self._estimates.get(row.get("spec_hash"))
        return est if est is not None else self.estimate(ArchSpec.from_json(row["spec"]))

    def _estimate(self, spec: ArchSpec) -> Estimate:
        c, k = self.in_channels, self.num_classes
        params, macs = count_params(spec, c, k), count_macs(spec, c, k)
        weights, activations = weight_bytes(spec, c, k), activation_peak_bytes(spec, c, k)
        latency = self.device.predict_latency_ms(spec, c, k)
        blocks = sum(s.depth for s in spec.stages)
        layers = plan(spec, c, k)
        structure = (float(sum(layer.out_shape[2] for layer in layers if layer.kind in ("conv", "dwconv"))), float(len(layers)), 1.0)
        descriptor = (math.log(max(params, 1)), math.log(max(macs, 1)), math.log(max(activations, 1)),
                      math.log(latency) if latency else math.log(max(macs, 1)), math.log(spec.resolution), float(blocks),
                      float(spec.sparsity), *(float(spec.quantization == m) for m in self.modes if len(self.modes) > 1))
        return Estimate(spec, weights, activations, latency, descriptor, structure)

    # --- calibration on what trained trials measured ---------------------------------------------
    def corrections(self, trained: Sequence[Mapping]) -> dict[tuple[str, str], np.ndarray]:
        """Overhead coefficients per (quantization mode, size_bytes | peak_ram_bytes), refitted on
        `trained` rows (records with `spec`, `size_bytes`, `peak_ram_bytes`)."""
        data: dict[tuple[str, str], list[tuple[tuple[float, ...], float]]] = {}
        for row in trained:
            key = _row_key(row)
            points = self._points.get(key) if key else None
            if points is None:
                est = self.estimate_row(row)
                points = [((est.spec.quantization, name), est.structure, row[name] - bound)
                          for name, bound in (("size_bytes", est.weight_bytes), ("peak_ram_bytes", est.activation_bytes))
                          if row.get(name)]
                if key:
                    self._points[key] = points
            for which, structure, residual in points:
                data.setdefault(which, []).append((structure, residual))
        out = {}
        for key, points in data.items():
            prior = np.array(OVERHEAD_PRIOR[key[1]])
            x = np.vstack([np.array([p for p, _ in points]), np.diag(_PRIOR_WEIGHT)])
            y = np.concatenate([[v for _, v in points], _PRIOR_WEIGHT * prior])
            out[key] = np.linalg.lstsq(x, y, rcond=None)[0]
        return out

    def growing_corrections(self, rows: Sequence[Mapping]) -> dict[tuple[str, str], np.ndarray]:
        """`corrections` of one study's rows as the study grows: refitted when they grew by a 64th since
        the last fit (on every new row under 128 rows). One row more among thousands moves the fit by
        nothing, and the fit reads every row: a 2,000-trial study's asks spent 4-9 ms each here."""
        n = len(rows)
        if self._fitted is None or not 0 <= n - self._fitted[0] < max(1, self._fitted[0] // 64):
            self._fitted = (n, self.corrections(rows))
        return self._fitted[1]

    def costs(self, est: Estimate, corrections: Mapping[tuple[str, str], np.ndarray]) -> dict[str, float | None]:
        mode = est.spec.quantization

        def overhead(name: str) -> float:
            coef = corrections.get((mode, name), np.array(OVERHEAD_PRIOR[name]))
            return float(np.dot(coef, est.structure))

        latency, power = est.latency_ms, self.device.power_mw
        return {"size_bytes": est.weight_bytes + overhead("size_bytes"),
                "peak_ram_bytes": est.activation_bytes + overhead("peak_ram_bytes"),
                "latency_ms": latency, "energy_uj": latency * power if latency is not None and power is not None else None}

    def scales(self, estimates: Sequence[Estimate], corrections: Mapping[tuple[str, str], np.ndarray],
               measured: Sequence[Mapping] = ()) -> dict[str, float]:
        """What each cheap objective is divided by: its budget, else the largest value estimated for
        `estimates` or measured in `measured` rows (so every point of a study lies in the unit box)."""
        b = self.config.budgets
        budget = {"size_bytes": b.max_size_kb * KB if b.max_size_kb else None,
                  "peak_ram_bytes": b.max_ram_kb * KB if b.max_ram_kb else None,
                  "latency_ms": b.max_latency_ms, "energy_uj": b.max_energy_uj}
        out = {}
        costs = self.cost_columns(estimates, corrections)
        for name in self.cheap:
            if budget[name]:
                out[name] = float(budget[name])
            else:
                column = self._measured_raw(measured)[:, self.cheap.index(name)]
                seen = [float(np.nanmax(values)) for values in (costs[name], column) if np.isfinite(values).any()]
                out[name] = max(seen) if seen and max(seen) > 0 else 1.0
        return out

    def box(self, estimates: Sequence[Estimate], corrections: Mapping[tuple[str, str], np.ndarray], scales: Mapping[str, float]) -> np.ndarray:
        """Cheap objectives of `estimates` in the budget box, one row each (NaN where the device predicts
        none: a host device measures its latency after training)."""
        costs = self.cost_columns(estimates, corrections)
        columns = [costs[n] / scales[n] for n in self.cheap]  # NaN stays NaN
        return np.column_stack(columns) if columns else np.zeros((len(estimates), 0))

    def cost_columns(self, estimates: Sequence[Estimate], corrections: Mapping[tuple[str, str], np.ndarray]) -> dict[str, np.ndarray]:
        """`costs` of many estimates at once, one array per objective (NaN for None): every ask weighs
        the whole pool and every trained spec, so this is vectorised."""
        n = len(estimates)
        structure = np.array([e.structure for e in estimates], dtype=float).reshape(n, 3)
        modes = np.array([e.spec.quantization for e in estimates], dtype=object)
        out = {"size_bytes": np.array([e.weight_bytes for e in estimates], dtype=float),
               "peak_ram_bytes": np.array([e.activation_bytes for e in estimates], dtype=float)}
        for name in ("size_bytes", "peak_ram_bytes"):
            for mode in set(modes.tolist()):
                chosen = modes == mode
                out[name][chosen] += structure[chosen] @ corrections.get((mode, name), np.array(OVERHEAD_PRIOR[name]))
        latency = np.array([e.latency_ms if e.latency_ms is not None else np.nan for e in estimates], dtype=float)
        power = self.device.power_mw
        out["latency_ms"], out["energy_uj"] = latency, latency * power if power is not None else np.full(n, np.nan)
        return out

    def measured_box(self, rows: Sequence[Mapping], scales: Mapping[str, float]) -> np.ndarray:
        """Measured cheap objectives of trained rows in the same box (NaN where not measured)."""
        return self._measured_raw(rows) / np.array([scales[n] for n in self.cheap], dtype=float)

    def admits(self, row: Mapping) -> bool:
        """`Budgets.admits` of a trained row, kept per stored trial."""
        key = _row_key(row)
        if key is None:
            return self.config.budgets.admits(row)
        ok = self._admits.get(key)
        if ok is None:
            ok = self._admits[key] = self.config.budgets.admits(row)
        return ok

    def _measured_raw(self, rows: Sequence[Mapping]) -> np.ndarray:
        out = []
        for r in rows:
            key = _row_key(r)
            values = self._measured.get(key) if key else None
            if values is None:
                values = tuple(float(r[n]) if r.get(n) is not None else np.nan for n in self.cheap)
                if key:
                    self._measured[key] = values
            out.append(values)
        return np.asarray(out, dtype=float).reshape(len(out), len(self.cheap))


def _row_key(row: Mapping) -> tuple | None:
    """What names a stored trial's record for good (None for a row that is not one)."""
    trial, spec_hash = row.get("trial"), row.get("spec_hash")
    return (trial, spec_hash) if trial is not None and spec_hash else None


def fill_unknown(values: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """`values` (rows in the budget box) with each NaN, an objective the device predicts nothing for
    (a host device's latency), replaced by the median the trained trials `measured` there (0.5 before any)."""
    values = np.asarray(values, dtype=float)
    typical = np.array([np.nanmedian(col) if np.isfinite(col).any() else 0.5 for col in np.asarray(measured, float).T]) \
        if np.size(measured) else np.full(values.shape[-1], 0.5)
    return np.where(np.isnan(values), typical, values)
