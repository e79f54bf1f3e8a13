"""Study files (`studies/*.yaml`): what to search, under which budget, for how long.

Every key is checked: unknown keys, wrong types and unknown names are `ConfigError`s that
name the key, the value and what is allowed. Command-line flags override the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..candidate import TrainConfig
from ..catalog import catalog_file, catalog_names, load_yaml
from ..errors import ConfigError, UnknownNameError
from ..files import atomic_write_text
from ._budgets import Budgets
from ._pareto import OBJECTIVES

__all__ = ["StudyConfig", "SAMPLERS", "load_study", "study_from_dict", "study_names", "write_run_config",
           "load_run_config"]

SAMPLERS = ("nsga2", "tpe", "random", "kerastuner-bayes", "kerastuner-hyperband")


@dataclass(frozen=True)
class StudyConfig:
    name: str
    dataset: str
    space: str
    device: str = "host-litert"
    budgets: Budgets = field(default_factory=Budgets)
    objectives: tuple[str, ...] = tuple(OBJECTIVES)
    trials: int = 20
    sampler: str = "tpe"  # chosen by hypervolume: see benchmarks/README.md (samplers.py)
    seed: int = 0
    proxy: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3))
    final: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20))
    final_top_k: int = 5  # how many proxy-Pareto candidates are retrained with `final`
    space_overrides: Mapping[str, list] = field(default_factory=dict)  # narrower choices per top-level field
    data_dir: str | None = None

    def __post_init__(self) -> None:
        _check_type("name", self.name, str)
        for key in ("trials", "seed", "final_top_k"):
            _check_type(key, getattr(self, key), int)
        if self.trials < 1 or self.final_top_k < 1 or self.seed < 0:
            raise ConfigError("trials and final_top_k must be >= 1 and seed >= 0")
        from ..data import DATASETS

        if self.dataset not in DATASETS:
            raise UnknownNameError("dataset", self.dataset, DATASETS)
        if self.sampler not in SAMPLERS:
            raise UnknownNameError("strategy", self.sampler, SAMPLERS)
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad or not self.objectives or "accuracy" not in self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives: {list(self.objectives)} must be distinct names from {list(OBJECTIVES)} including 'accuracy'")

    # --- derived -------------------------------------------------------------------------------
    def search_space(self):
        """The catalog space with `space_overrides` applied (validated like a space file)."""
        from ..spec import SearchSpace

        data = load_yaml(catalog_file("search_spaces", self.space))
        unknown = sorted(set(self.space_overrides) - {k for k in data if k not in ("name", "description", "stages")})
        if unknown:
            raise ConfigError(f"space_overrides: unknown field(s) {unknown}; allowed: resolution, stem_channels, "
                              "stem_stride, num_stages, head_channels, quantization, sparsity")
        return SearchSpace.from_dict({**data, **self.space_overrides}, source=f"space {self.space!r} with the study's overrides")

    def identity(self) -> str:
        """What a stored study must match to be resumed: same data, space and seed."""
        key = {"dataset": self.dataset, "space": self.space, "overrides": dict(self.space_overrides), "seed": self.seed,
               "objectives": list(self.objectives), "proxy": self.proxy.to_dict()}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        data["space_overrides"] = dict(self.space_overrides)
        return data

    def with_overrides(self, **changes: Any) -> "StudyConfig":
        budgets = {k: changes.pop(k) for k in ("max_size_kb", "max_ram_kb", "max_latency_ms") if changes.get(k) is not None}
        changes = {k: v for k, v in changes.items() if v is not None}
        if budgets:
            changes["budgets"] = replace(self.budgets, **budgets)
        return replace(self, **changes)


_KEYS = {f for f in StudyConfig.__dataclass_fields__}


def _check_type(key: str, value: Any, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")


def study_from_dict(data: Mapping[str, Any], source: str = "<study>") -> StudyConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a study must be a YAML mapping")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    missing = sorted({"name", "dataset", "space"} - set(data))
    if missing:
        raise ConfigError(f"{source}: missing key(s) {missing}")
    values = dict(data)
    try:
        for key, build in (("budgets", Budgets), ("proxy", TrainConfig), ("final", TrainConfig)):
            if key in values:
                if not isinstance(values[key], Mapping):
                    raise ConfigError(f"{key}: expected a mapping, got {values[key]!r}")
                allowed = set(build.__dataclass_fields__)
                extra = sorted(set(values[key]) - allowed)
                if extra:
                    raise ConfigError(f"{key}: unknown key(s) {extra}; allowed: {sorted(allowed)}")
                values[key] = build(**values[key])
        if "objectives" in values:
            if not isinstance(values["objectives"], list):
                raise ConfigError(f"objectives: expected a list, got {values['objectives']!r}")
            values["objectives"] = tuple(values["objectives"])
        if "space_overrides" in values and not isinstance(values["space_overrides"], Mapping):
            raise ConfigError(f"space_overrides: expected a mapping, got {values['space_overrides']!r}")
        for key in ("dataset", "space", "device", "sampler"):
            if key in values:
                _check_type(key, values[key], str)
        config = StudyConfig(**values)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except TypeError as exc:  # a wrong type reaching a dataclass
        raise ConfigError(f"{source}: {exc}") from None
    return config


def load_study(path_or_name: str | Path, **overrides: Any) -> StudyConfig:
    """A study from a YAML path, or by name from the `studies/` catalog; flags override it."""
    path = Path(path_or_name)
    if not path.suffix and not path.exists():
        path = catalog_file("studies", str(path_or_name))
    if not path.is_file():
        raise ConfigError(f"study file {path} does not exist; catalog studies: {', '.join(study_names())}")
    config = study_from_dict(load_yaml(path), source=str(path))
    config = config.with_overrides(**overrides)
    # Check names that live in other catalogs now, before anything runs.
    config.search_space()
    from ..latency import load_device

    device = load_device(config.device)
    if device.unit != "ms":
        raise ConfigError(f"device {device.name} counts {device.unit}, not time; a search needs a device with a latency in ms "
                          f"(nas devices lists them)")
    if device.latency_source == "model" and device.artifact is None:
        raise ConfigError(f"device {device.name} has no latency model yet: run `nas calibrate --device {device.name}` first")
    return config


def study_names() -> list[str]:
    return catalog_names("studies")


def write_run_config(config: StudyConfig, out_dir: Path) -> Path:
    """`<out>/study.json`: the settings a finished search ran with, read back by export and compare."""
    path = Path(out_dir) / "study.json"
    atomic_write_text(path, json.dumps(config.to_dict(), indent=2, default=str, sort_keys=True))
    return path


def load_run_config(out_dir: Path) -> StudyConfig:
    """The study a search in `out_dir` ran with (its study.json); a clear error when there is none."""
    path = Path(out_dir) / "study.json"
    if not path.is_file():
        raise ConfigError(f"{out_dir} holds no finished search (no study.json); run `nas search` with --out {out_dir}")
    return study_from_dict(json.loads(path.read_text()), source=str(path))
