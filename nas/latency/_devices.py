"""Device profiles (`devices/*.yaml`): a target's runtime, memory, the quantization modes its
runtime runs, its latency unit, and where its figures come from.

Latency sources:
    host_measurement   every candidate is timed on this host (LiteRT, 1 thread)
    model              a fitted latency model (`latency_models/<latency_model>.json`, written by
                       `nas calibrate`) predicts from the model's kernels, before or after training

Units: "ms" for time; "instructions" for the instruction-count rulers (`host-*-icount` under
valgrind, `cortex-m*-qemu-*` on the Arm build under QEMU), which are what latency models are
validated against. A search optimises time, so it needs an "ms" device.
Latency enters the search through one seam, `Device.latency_ms(result)`. A prediction is a typed
`Prediction`: a value with its unit, or the reason there is none.
"""

from __future__ import annotations

import json
import os
import platform
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..catalog import catalog_candidates, catalog_dirs, catalog_file, catalog_names, load_yaml
from ..errors import ConfigError
from ..spec import QUANT_MODES, ArchSpec, check_io
from ._mcu import energy_errors, new_model_error
from ._stand_ins import _priced_row, _widening

__all__ = ["Device", "Prediction", "load_device", "device_names", "load_artifact", "artifact_path", "calibration_score",
           "candidate_error", "host_cpu"]

_LATENCY_SOURCES = ("host_measurement", "model")
_UNITS = ("ms", "instructions")
_RUNTIMES = ("litert", "tflm", "xcubeai", "stedgeai", "plumerai", "hale", "microtvm", "onnc")
_MEASURES = ("", "icount", "qemu", "wallclock", "published")


@dataclass(frozen=True)
class Prediction:
    """A model priced on a device: `value` in `unit` ("ms" or "instructions"), or, when `runs` is
    False, the `reason` the device cannot run or price it. `arena_bytes` is the predicted TFLite
    Micro arena where the device's runtime is TFLite Micro and a .tflite was given."""

    mode: str
    runs: bool
    unit: str
    value: float | None = None
    reason: str = ""
    arena_bytes: int | None = None
    energy_uj: float | None = None  # boards whose published results include energy: predicted uJ per inference
    error_pct: float | None = None  # the latency model's mean error on this board for a model no board has run
    error_max_pct: float | None = None  # ... and its largest (each reference model left out of the whole catalog)
    #: the energy figure's error for this case: the latency error compounded with the board's power
    #: model's own leave-one-model-out error, (1 + latency) x (1 + power) - 1; mean and max
    energy_error_pct: float | None = None
    energy_error_max_pct: float | None = None
    #: operators outside the calibration, priced by the nearest calibrated kernel:
    #: (operator[/variant], the family that priced it, its share of the prediction in %)
    estimated: tuple[tuple[str, str, float], ...] = ()

    @property
    def latency_ms(self) -> float | None:
        return self.value if self.runs and self.unit == "ms" else None

    @property
    def instructions(self) -> float | None:
        return self.value if self.runs and self.unit == "instructions" else None

    def to_dict(self) -> dict:
        """JSON form: the value under its unit's name (`latency_ms` or `instructions`)."""
        out: dict = {"mode": self.mode, "runs": self.runs, "unit": self.unit}
        if self.runs:
            out["latency_ms" if self.unit == "ms" else "instructions"] = self.value
        else:
            out["reason"] = self.reason
        for key in ("arena_bytes", "energy_uj", "error_pct", "error_max_pct", "energy_error_pct", "energy_error_max_pct"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.estimated:
            out["estimated"] = [{"op": op, "priced_as": family, "share_pct": round(share, 2)}
                                for op, family, share in self.estimated]
        return out


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    runtime: str  # "litert" | "tflm" | "xcubeai" | ... (the runtime that executes the model)
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
    board: str = ""  # microcontrollers: the submitters' system ids of their MLPerf Tiny results
    board_runtime: str = ""  # ... and the runtime with its version, as the results name it
    runtime_family: str = ""  # the board catalog's runtime family (tflm, tflm-cmsisnn, xcubeai, plumerai, ...)
    memory_source: str = ""  # where sram_kb and flash_kb come from (a datasheet), or why they are empty
    sparsity_modes: tuple[str, ...] = ()  # modes whose pruned weights the runtime stores in fewer bytes or runs in fewer cycles
    sparsity_note: str = ""  # what pruning buys on this runtime, as measured (benchmarks/README.md, sparsity)
    arm_core: str = ""  # measure qemu: the core of the Arm build that counts it (`nas.firmware.CORES`)
    kernels: str = ""  # ... and its kernel set, cmsisnn or reference

    def runs(self, mode: str) -> bool:
        return mode in self.quantization

    @property
    def arm_build(self) -> tuple[str, str] | None:
        """The Arm build (`nas.firmware`: core, kernel set) that runs what this device runs: its own
        for the cortex-m*-qemu-* devices; for a board, its core's build with the reference kernels
        under plain TFLite Micro and CMSIS-NN otherwise (the CMSIS-NN ports, and the stand-in for
        runtimes that are not TFLite Micro); None where no build has the device's core."""
        from ..firmware import CORES

        if self.arm_core:
            return self.arm_core, self.kernels
        core = (self.core or "").lower().replace("+", "p").replace(" ", "")
        if core not in CORES:
            return None
        return core, "reference" if self.runtime_family == "tflm" else "cmsisnn"

    def gains_from_sparsity(self, mode: str) -> bool:
        """Whether pruned weights in `mode` save this runtime bytes or cycles (else pruning only costs accuracy)."""
        return mode in self.sparsity_modes

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
        return self.predict(result.tflite).latency_ms

    @property
    def power_mw(self) -> float | None:
        """Mean power while inferring (published uJ / ms), for boards whose results include energy."""
        artifact = self.artifact if self.latency_model else None
        if not artifact or artifact.get("kind") != "board-catalog":
            return None
        return (artifact["profiles"].get(self.name) or {}).get("power_mw")

    def energy_uj(self, result) -> float | None:
        """Energy per inference of a measured candidate on this board (latency x mean power)."""
        latency, power = self.latency_ms(result), self.power_mw
        return latency * power if latency is not None and power is not None else None

    def predict_latency_ms(self, spec: ArchSpec, in_channels: int, num_classes: int) -> float | None:
        """Latency predicted from the spec alone, before training; None where no model applies."""
        if not self.latency_model or self.unit != "ms" or self.artifact is None:
            return None
        return self.predict(spec, in_channels, num_classes).latency_ms

    def predict(self, source: ArchSpec | bytes | str | Path | Graph, in_channels: int | None = None,
                num_classes: int | None = None) -> Prediction:
        """Predict one model (a spec, or .tflite bytes or path) on this device.

        Raises ConfigError when the device has no fitted latency model, or a spec comes with fewer
        than 1 input channel or 2 classes (`nas.spec.check_io`)."""
        return self._predict(source, in_channels, num_classes)[0]

    def _predict(self, source, in_channels, num_classes) -> tuple[Prediction, list | None, object]:
        """The prediction and, where a kernel-sum model priced it, the kernels it priced (stand-ins
        in their place) and that cost model: a board prices the same kernels by class."""
        from ._flatbuffer import Graph, parse_tflite
        from ._kernels import kernels_from_spec, kernels_from_tflite, model_mode

        if isinstance(source, ArchSpec):
            if in_channels is None or num_classes is None:
                raise ConfigError("predicting a spec needs its input channels and number of classes")
            check_io(in_channels, num_classes)  # before any answer, "does not run" included
            mode, tflite, parsed = source.quantization, None, None
        else:
            # parsed once: kernels, mode and arena all come from it (`tflite` is its Graph from here on)
            tflite = source if isinstance(source, Graph) else parse_tflite(source)
            memo = _LAST_READ[0]
            if memo is not None and memo[0] is tflite:  # the same Graph priced again (on each board of `runs_on`)
                parsed, mode = memo[1], memo[2]
            else:
                parsed = kernels_from_tflite(tflite)
                mode = model_mode(parsed)
                _LAST_READ[0] = (tflite, parsed, mode)  # one tuple: read whole, whatever another thread writes
        artifact = self.artifact
        if artifact is None:
            raise ConfigError(f"device {self.name} has no latency model: "
                              + (f"run `nas calibrate --device {self.name}`" if self.latency_model
                                 else "its latency is measured per candidate on the host"))

        def refused(reason: str) -> tuple[Prediction, None, None]:
            return Prediction(mode, False, self.unit, reason=reason), None, None

        if not self.runs(mode):
            if mode == "uint8" and self.runtime == "litert":  # LiteRT runs them, on kernels no calibration has measured
                return refused(f"{self.name}'s latency model was not calibrated for uint8 models (quantized to uint8 "
                               "throughout, as TensorFlow 1 quantized them; LiteRT runs them on kernels of their own)")
            return refused(f"{self.name} ({self.runtime}) does not run {mode} models; it runs {', '.join(self.quantization)}")
        if self.measure == "wallclock":
            fitted_on = artifact.get("provenance", {}).get("cpu")
            if fitted_on != host_cpu():  # wall-clock time does not transfer between machines
                return refused(f"{self.name}'s latency model was fitted on {fitted_on or 'another machine'}, not this "
                               f"machine's {host_cpu()}: refit it here with `nas calibrate --device {self.name}`")
        if artifact.get("kind") == "board-catalog":
            return self._predict_on_board(artifact, source if tflite is None else tflite, mode, in_channels,
                                          num_classes), None, None
        if artifact.get("kind") == "scaled-instructions":
            base = load_device(artifact["base_device"]).predict(tflite if tflite is not None else source, in_channels, num_classes)
            if not base.runs:
                return refused(base.reason)
            return Prediction(mode, True, self.unit, base.instructions * artifact["ms_per_instruction"],
                              arena_bytes=base.arena_bytes if self.runtime == "tflm" else None), None, None
        fitted = artifact.get("modes", {}).get(mode)
        if fitted is None:
            return refused(f"{self.name}'s latency model was not calibrated for {mode}")
        model = _cost_model(fitted)
        kernels = parsed if parsed is not None else kernels_from_spec(source, in_channels, num_classes)
        cannot = self._cannot_run(kernels, tflite)
        if cannot:
            return refused(cannot)
        kernels, estimated, row = _priced_row(kernels, model, artifact.get("feature_set", "kernel"))
        unpriced = model.unpriced(row)
        if unpriced:
            return refused(f"operators not seen in {self.name}'s calibration, and none calibrated near them: "
                           f"{', '.join(unpriced)}")
        value = model.predict(row)
        shares = tuple((op, family, 100.0 * cost / value) for op, family, cost in estimated) if value > 0 else ()
        widened, widened_max = _widening(artifact, shares, mode)
        held_out = (artifact.get("validation") or {}).get(mode) or {}
        arena = None
        fitted_arena = (artifact.get("arena") or {}).get("modes", {}).get(mode)
        if fitted_arena and tflite is not None:
            from ._arena import arena_features, predict_arena

            arena = predict_arena(arena_features(tflite), fitted_arena)
        return Prediction(mode, True, self.unit, value, arena_bytes=arena,
                          error_pct=held_out["mape_pct"] + widened if "mape_pct" in held_out else None,
                          error_max_pct=held_out["max_error_pct"] + widened_max if "max_error_pct" in held_out else None,
                          estimated=shares), kernels, model

    def _cannot_run(self, kernels, graph=None) -> str:
        """Why this device's runtime cannot run these kernels (of `graph`, when read from a file) at
        all, or the predictor cannot price them; empty when it can (`_runtimes.cannot_run`)."""
        from ._runtimes import cannot_run

        return cannot_run(self.runtime, kernels, graph)

    def _predict_on_board(self, artifact: dict, source, mode: str, in_channels, num_classes) -> Prediction:
        """Board catalog: the base device's instructions per kernel class (its core's Arm build, from its
        kernel model) x this board's ms per instruction of each class."""
        from ._flatbuffer import Graph
        from ._mcu import class_instructions, coef_digest

        entry = artifact["profiles"].get(self.name)
        if entry is None or "base_device" not in entry:
            return Prediction(mode, False, self.unit, reason=f"{self.name} is not in the board catalog "
                              f"({artifact_path(self.latency_model)}): run `nas calibrate --boards`")
        base = load_device(entry["base_device"])
        fitted = ((base.artifact or {}).get("modes") or {}).get(mode)
        if fitted is None or coef_digest(fitted["coef"]) != (artifact.get("base_devices") or {}).get(base.name):
            return Prediction(mode, False, self.unit, reason=f"{base.name}'s latency model changed since the board "
                              "catalog was fitted on it: refit the catalog with `nas calibrate --boards`")
        # the base model prices the kernels (refusing what it cannot), the board splits the same kernels by class;
        # a Graph or spec priced on one board after another is priced on each base once (a Graph is immutable)
        key = (base.name, in_channels, num_classes)
        memo = _LAST_BASE.get(base.name)
        if memo is not None and memo[0] is source and memo[1] is base.artifact and memo[2] == key:
            priced, kernels, base_model = memo[3]
        else:
            priced, kernels, base_model = base._predict(source, in_channels, num_classes)
            if isinstance(source, (Graph, ArchSpec)):
                if len(_LAST_BASE) > 8:
                    _LAST_BASE.clear()
                _LAST_BASE[base.name] = (source, base.artifact, key, (priced, kernels, base_model))
        if not priced.runs:
            return Prediction(mode, False, self.unit, reason=priced.reason)
        counts = class_instructions(kernels, base_model.coef, base.artifact.get("feature_set", "kernel"))
        ms = sum(entry["ms_per_instruction"][c] * counts[c] for c in counts)
        power = entry.get("power_mw")
        widened, widened_max = _widening(base.artifact, priced.estimated, mode)
        mean, largest = new_model_error(artifact, entry, isinstance(source, ArchSpec), base.artifact)
        error, error_max = mean + widened, largest + widened_max
        energy = energy_errors(entry, error, error_max)  # (None, None) where the board published no energy
        return Prediction(mode, True, self.unit, ms, arena_bytes=priced.arena_bytes if self.runtime == "tflm" else None,
                          energy_uj=power * ms if power else None, error_pct=error, error_max_pct=error_max,
                          energy_error_pct=energy[0], energy_error_max_pct=energy[1], estimated=priced.estimated)


def host_cpu() -> str:
    """This machine's CPU model, as /proc/cpuinfo names it (what a wall-clock latency model is fitted for)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_COST_MODELS: dict[int, tuple[dict, object]] = {}
#: The last Graph read, with its kernels and mode; the last source priced on the host for a board,
#: with what the host said (one entry each: `runs_on` prices one file on every board in turn).
_LAST_READ: list = [None]
_LAST_BASE: dict = {}  # base device name -> (source, its artifact, key, what it said)


def _cost_model(fitted: dict):
    """The cost model of an artifact's mode, built once per loaded artifact (artifacts are cached per file version)."""
    from ._regress import KernelCostModel

    cached = _COST_MODELS.get(id(fitted))
    if cached is None or cached[0] is not fitted:
        if len(_COST_MODELS) > 256:
            _COST_MODELS.clear()
        cached = _COST_MODELS[id(fitted)] = (fitted, KernelCostModel.from_dict(fitted))
    return cached[1]


def candidate_error(artifact: dict, entry: dict) -> tuple[float, float]:
    """The latency error (mean, max) a search candidate carries on a board of the catalog (`entry` of
    `artifact`): a spec no board has run, priced through the board's base device."""
    base = load_device(entry["base_device"]).artifact if "base_device" in entry else None
    return new_model_error(artifact, entry, True, base)


def calibration_score(device: Device) -> str:
    """How well the device's latency figures are known, in words (for `nas devices`)."""
    artifact = device.artifact
    if device.latency_model and artifact is None:
        return "not calibrated yet"
    if artifact is None:
        return "measured per candidate"
    validation = artifact.get("validation", {})
    if artifact.get("kind") == "board-catalog":
        entry = artifact["profiles"].get(device.name)
        if entry is None:
            return "not in the board catalog"
        lobo = entry["lobo"].get("mean_abs_error_pct")
        mean, largest = candidate_error(artifact, entry)
        energy = energy_errors(entry, mean, largest)
        return (f"leave-one-model-out mean {entry['loo_mean_pct']:.0f}%, max {entry['loo_max_pct']:.0f}% "
                f"({len(entry['refs'])} refs); a search candidate (no board has run it): mean {mean:.0f}%, "
                f"max {largest:.0f}%" + (f"; leave-one-board-out {lobo:.0f}%" if lobo is not None else "")
                + (f"; its energy: mean {energy[0]:.0f}%, max {energy[1]:.0f}%" if energy[0] is not None else ""))
    if artifact.get("kind") == "scaled-instructions":
        loo = validation.get("leave_one_out", {})
        if not loo.get("n"):
            return f"{len(artifact.get('references', []))} published timing(s), no leave-one-out"
        return f"leave-one-out mean {loo['mean_abs_error_pct']:.0f}%, max {loo['max_abs_error_pct']:.0f}% ({loo['n']} refs)"
    overall = validation.get("all", {})
    if not overall:
        return "calibrated, no held-out score"
    return f"held-out {overall['within_10pct']:.0%} within 10%, Spearman {overall['spearman']:.3f} (n={overall['n']})"


def artifact_path(name: str) -> Path:
    """Where the artifact `name` is read from (or, when absent, written by default)."""
    for path in catalog_candidates("latency_models", f"{name}.json"):
        if os.path.isfile(path):
            return Path(path)
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
    """The artifact `name` where `artifact_path` would find it (parsed once per file version), None
    if there is none: one stat per candidate, not `artifact_path`'s two, on every prediction."""
    for path in catalog_candidates("latency_models", f"{name}.json"):
        try:
            info = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            return _read_artifact(path, info.st_mtime)
    return None


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
    sparse = tuple(data.get("sparsity_modes", ()))
    if any(m not in modes for m in sparse):
        raise ConfigError(f"{path}: sparsity_modes {list(sparse)} must be modes the device runs ({list(modes)})")
    for key, valid in (("latency_source", _LATENCY_SOURCES), ("unit", _UNITS), ("runtime", _RUNTIMES),
                       ("measure", _MEASURES)):
        if data.get(key, "") not in valid:
            raise ConfigError(f"{path}: {key} must be one of {[v for v in valid if v]}")
    if (data.get("measure") == "qemu") != bool(data.get("arm_core") and data.get("kernels")):
        raise ConfigError(f"{path}: measure qemu goes with arm_core and kernels (the Arm build that counts it), and only it")
    if data["latency_source"] == "model" and not data.get("latency_model"):
        raise ConfigError(f"{path}: latency_source model needs latency_model (an artifact name)")
    try:
        return Device(**{**data, "quantization": modes, "sparsity_modes": sparse})
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def device_names() -> list[str]:
    return catalog_names("devices")
