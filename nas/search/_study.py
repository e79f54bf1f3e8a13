"""Study files (`studies/*.yaml`): what to search, under which budget, for how long.

Every key is checked: unknown keys, wrong types and unknown names are `ConfigError`s that
name the key, the value and what is allowed. Command-line flags override the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..candidate import FINAL_DEFAULTS, TrainConfig
from ..catalog import catalog_file, catalog_names, load_yaml
from ..errors import ConfigError, UnknownNameError
from ..files import atomic_write_text
from ._budgets import Budgets
from ._pareto import OBJECTIVES

#: The device a study names none: a real board whose latency model states its error (the NUCLEO-L4R5ZI's
#: Cortex-M4 under TFLite Micro, fitted on its published MLPerf Tiny results).
DEFAULT_DEVICE = "cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1"

__all__ = ["StudyConfig", "SAMPLERS", "DEFAULT_SAMPLER", "load_study", "study_from_dict", "study_names", "write_run_config",
           "load_run_config", "device_space", "load_study_dataset", "check_teacher",
           "DEFAULT_DEVICE", "with_board_memory"]

#: `guided` is the default (`--strategy optuna` names it): a feasible space-filling start, then a surrogate and
#: expected hypervolume improvement over the free objectives, with successive halving (`_guided`, `_halving`).
SAMPLERS = ("guided", "nsga2", "tpe", "random", "kerastuner-bayes", "kerastuner-hyperband")
DEFAULT_SAMPLER = "guided"


@dataclass(frozen=True)
class StudyConfig:
    name: str
    dataset: str
    space: str
    device: str = DEFAULT_DEVICE
    budgets: Budgets = field(default_factory=Budgets)
    objectives: tuple[str, ...] = ("accuracy", "latency_ms", "size_bytes", "peak_ram_bytes")  # energy_uj: opt in
    trials: int = 20
    sampler: str = DEFAULT_SAMPLER  # chosen by hypervolume: see benchmarks/README.md (strategies)
    seed: int = 0
    proxy: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3))
    final: TrainConfig = field(default_factory=lambda: FINAL_DEFAULTS)  # the YAML's `final:` keys merge onto these
    final_top_k: int = 5  # how many proxy-Pareto candidates are retrained with `final`
    space_overrides: Mapping[str, list] = field(default_factory=dict)  # narrower choices per top-level field
    data_dir: str | None = None
    image_size: int | None = None  # stored image size to read (MedMNIST 28/64/128/224); default: the largest resolution searched
    halving: bool | None = None  # successive halving across proxy epochs; None: on for the guided strategy
    warm_start: str | None = None  # an earlier run folder of the same space and device: its best specs are tried first

    def __post_init__(self) -> None:
        _check_type("name", self.name, str)
        for key in ("trials", "seed", "final_top_k"):
            _check_type(key, getattr(self, key), int)
        if self.trials < 1 or self.final_top_k < 1 or self.seed < 0:
            raise ConfigError("trials and final_top_k must be >= 1 and seed >= 0")
        check_teacher(self.final.teacher)
        if self.halving is not None and not isinstance(self.halving, bool):
            raise ConfigError(f"halving: expected true, false or null, got {self.halving!r}")
        if self.warm_start is not None:
            _check_type("warm_start", self.warm_start, str)
        if self.proxy.distilled:
            raise ConfigError(f"proxy.teacher: {self.proxy.teacher!r}; distillation is for the final training only "
                              "(final.teacher), the proxy has no teacher yet: set proxy.teacher to none")
        if self.image_size is not None:
            _check_type("image_size", self.image_size, int)
            if not 8 <= self.image_size <= 1024:
                raise ConfigError(f"image_size: {self.image_size} is out of range [8, 1024]")
        from ..data import DATASETS

        if self.dataset not in DATASETS:
            raise UnknownNameError("dataset", self.dataset, DATASETS)
        if self.sampler not in SAMPLERS:
            raise UnknownNameError("strategy", self.sampler, SAMPLERS)
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad or not self.objectives or "accuracy" not in self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives: {list(self.objectives)} must be distinct names from {list(OBJECTIVES)} including 'accuracy'")

    # --- derived -------------------------------------------------------------------------------
    @property
    def halving_on(self) -> bool:
        """Whether proxy trials stop at successive-halving rungs (default: with the guided strategy)."""
        return self.sampler == "guided" if self.halving is None else self.halving

    def catalog_space(self):
        """The catalog space with `space_overrides` applied (validated like a space file)."""
        from ..spec import SearchSpace

        data = load_yaml(catalog_file("search_spaces", self.space))
        unknown = sorted(set(self.space_overrides) - {k for k in data if k not in ("name", "description", "stages")})
        if unknown:
            raise ConfigError(f"space_overrides: unknown field(s) {unknown}; allowed: resolution, stem_channels, "
                              "stem_stride, num_stages, head_channels, quantization, sparsity")
        return SearchSpace.from_dict({**data, **self.space_overrides}, source=f"space {self.space!r} with the study's overrides")

    def search_space(self):
        """The space the search samples: the catalog space with its overrides, cut to what the
        device runs and gains from (`device_space`)."""
        from ..latency import load_device

        return device_space(self.catalog_space(), load_device(self.device))[0]

    def space_notes(self) -> tuple[str, ...]:
        """What `search_space` left out of the study's choices, and why, for the report."""
        from ..latency import load_device

        return device_space(self.catalog_space(), load_device(self.device))[1]

    def dataset_image_size(self) -> int:
        """The stored image size to read: `image_size`, else the largest input resolution searched."""
        return self.image_size or max(self.catalog_space().choices["resolution"])

    def identity(self, dataset_fingerprint: str) -> dict[str, Any]:
        """What a stored study must match to be resumed: everything that changes what a trial
        measures or how it is judged. `trials` is not in it: asking for more resumes."""
        return {"dataset": self.dataset, "dataset_fingerprint": dataset_fingerprint, "image_size": self.dataset_image_size(),
                "space": self.space, "space_overrides": {k: list(v) for k, v in self.space_overrides.items()},
                "device": self.device, "budgets": asdict(self.budgets), "objectives": list(self.objectives),
                "seed": self.seed, "proxy": self.proxy.to_dict(), "final": self.final.to_dict(),
                "final_top_k": self.final_top_k, **({"halving": True} if self.halving_on else {})}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        data["space_overrides"] = dict(self.space_overrides)
        return data

    def with_overrides(self, **changes: Any) -> "StudyConfig":
        budgets = {k: changes.pop(k) for k in ("max_size_kb", "max_ram_kb", "max_latency_ms", "max_energy_uj")
                   if changes.get(k) is not None}
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes.get("sampler") == "optuna":
            changes["sampler"] = DEFAULT_SAMPLER
        if budgets:
            changes["budgets"] = replace(self.budgets, **budgets)
        return replace(self, **changes)


_KEYS = {f for f in StudyConfig.__dataclass_fields__}


def device_space(space, device) -> tuple[Any, tuple[str, ...]]:
    """`space` cut to what `device` runs and gains from, and notes saying what was left out and why.

    Modes the device cannot run are not offered (ConfigError when none is left). Pruning is offered
    only when the device gains bytes or cycles from pruned weights in one of the modes left;
    otherwise sparsity is fixed at 0, since a pruned model there only loses accuracy."""
    modes = [m for m in space.choices["quantization"] if device.runs(m)]
    if not modes:
        raise ConfigError(f"the study's space offers quantization {list(space.choices['quantization'])}, none of which "
                          f"device {device.name} runs; it runs {', '.join(device.quantization)}: set "
                          "space_overrides.quantization to some of those")
    notes = []
    left_out = [m for m in space.choices["quantization"] if m not in modes]
    if left_out:
        notes.append(f"quantization: searched {', '.join(modes)}; left out {', '.join(left_out)}, which "
                     f"{device.name} ({device.runtime}) does not run")
    sparsity = tuple(space.choices["sparsity"])
    paying = [m for m in modes if device.gains_from_sparsity(m)]
    if any(s > 0 for s in sparsity):
        if not paying:
            sparsity = (0.0,)
            notes.append(f"sparsity: not searched (dense models only): {device.sparsity_note or 'the device gains nothing from pruned weights'}")
        elif len(paying) < len(modes):
            notes.append(f"sparsity: searched for {', '.join(paying)} only; pruned {', '.join(m for m in modes if m not in paying)} "
                         f"specs are rejected before training: {device.sparsity_note}")
    choices = {**space.choices, "quantization": tuple(modes), "sparsity": sparsity}
    return replace(space, choices=choices), tuple(notes)


def check_teacher(value: str) -> None:
    """A clear error for a `final.teacher` that is neither none, auto nor an existing Keras file."""
    from ..spec import BASELINE_MODELS

    if value in ("none", "auto") or value in BASELINE_MODELS:
        return
    try:
        exists = Path(value).expanduser().is_file()
    except (OSError, ValueError):  # a name the file system cannot hold (a NUL byte, too long)
        exists = False
    if Path(value).suffix not in (".keras", ".h5") or not exists:
        raise ConfigError(f"final.teacher: {value!r} is not 'none', 'auto', a baseline "
                          f"({', '.join(BASELINE_MODELS)}) or an existing .keras/.h5 model file; name a trained Keras model "
                          "or use auto (the search's most accurate float model)")


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
        if "budgets" in values:
            if not isinstance(values["budgets"], Mapping):
                raise ConfigError(f"budgets: expected a mapping, got {values['budgets']!r}")
            extra = sorted(set(values["budgets"]) - set(Budgets.__dataclass_fields__))
            if extra:
                raise ConfigError(f"budgets: unknown key(s) {extra}; allowed: {sorted(Budgets.__dataclass_fields__)}")
            values["budgets"] = Budgets(**values["budgets"])
        # proxy: and final: merge onto their own defaults (the cheap proxy, the full final recipe)
        for key, base in (("proxy", StudyConfig.__dataclass_fields__["proxy"].default_factory()), ("final", FINAL_DEFAULTS)):
            if key in values and not isinstance(values[key], TrainConfig):
                values[key] = TrainConfig.from_dict(values[key], where=key, base=base)
        if "objectives" in values:
            if not isinstance(values["objectives"], list):
                raise ConfigError(f"objectives: expected a list, got {values['objectives']!r}")
            values["objectives"] = tuple(values["objectives"])
        if "space_overrides" in values and not isinstance(values["space_overrides"], Mapping):
            raise ConfigError(f"space_overrides: expected a mapping, got {values['space_overrides']!r}")
        for key in ("dataset", "space", "device", "sampler"):
            if key in values:
                _check_type(key, values[key], str)
        if values.get("sampler") == "optuna":
            values["sampler"] = DEFAULT_SAMPLER  # "optuna" names the engine's default, whatever it is
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
    if (config.budgets.max_energy_uj is not None or "energy_uj" in config.objectives) and device.power_mw is None:
        raise ConfigError(f"device {device.name} has no energy model (its published results include no energy): drop "
                          "max_energy_uj and the energy_uj objective, or pick a board that has one (nas devices --json: power_mw)")
    return with_board_memory(config, device)


def with_board_memory(config: StudyConfig, device) -> StudyConfig:
    """A board named without a memory budget: its flash and SRAM, less the application's reserve
    (`nas.latency.APP_RESERVE`), become the size and RAM budgets."""
    from ..latency import board_budget_kb

    fill = {}
    if config.budgets.max_size_kb is None and device.flash_kb:
        fill["max_size_kb"] = round(board_budget_kb(device.flash_kb), 1)
    if config.budgets.max_ram_kb is None and device.sram_kb:
        fill["max_ram_kb"] = round(board_budget_kb(device.sram_kb), 1)
    return replace(config, budgets=replace(config.budgets, **fill)) if fill else config


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


def load_study_dataset(config: StudyConfig):
    """The dataset a study searches on, read at the study's image size (`dataset_image_size`)."""
    from ..data import load_dataset

    return load_dataset(config.dataset, config.data_dir, seed=config.seed, image_size=config.dataset_image_size())
