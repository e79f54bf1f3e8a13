"""Search spaces: a YAML file of choices per field, and the mechanics to sample and check specs.

Every field is a categorical choice. A space has `max_stages` stage slots; `num_stages` picks how
many of them a candidate uses. Sampling always draws every parameter in one fixed order with
stable names (``stage2_kernel``...), whether or not the slot is used, so the same code serves a
seeded `numpy` generator and an Optuna trial, and Optuna studies resume and compare across runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..catalog import catalog_file, catalog_names, load_yaml
from ..errors import ConfigError
from ._arch import QUANT_MODES, ArchSpec, StageSpec

__all__ = ["SearchSpace", "load_space", "space_names"]

_STAGE_FIELDS = ("depth", "channels", "expansion", "kernel", "stride")
_TOP_FIELDS = ("resolution", "stem_channels", "stem_stride", "num_stages", "head_channels", "quantization", "sparsity")

Chooser = Callable[[str, Sequence[Any]], Any]


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    choices: Mapping[str, tuple]  # top-level field -> options
    stage_choices: tuple[Mapping[str, tuple], ...]  # one mapping per stage slot

    # --- loading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<space>") -> "SearchSpace":
        allowed = {"name", "description", "stages", *_TOP_FIELDS}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        missing = sorted(({"name", "stages"} | set(_TOP_FIELDS)) - set(data))
        if missing:
            raise ConfigError(f"{source}: missing key(s) {missing}")
        choices = {f: _options(source, f, data[f]) for f in _TOP_FIELDS}
        bad_modes = [m for m in choices["quantization"] if m not in QUANT_MODES]
        if bad_modes:
            raise ConfigError(f"{source}: quantization {bad_modes} not in {list(QUANT_MODES)}")
        stages = data["stages"]
        if not isinstance(stages, list) or not stages:
            raise ConfigError(f"{source}: stages must be a non-empty list of stage slots")
        stage_choices = []
        for i, slot in enumerate(stages):
            if not isinstance(slot, Mapping) or set(slot) != set(_STAGE_FIELDS):
                raise ConfigError(f"{source}: stages[{i}] must have exactly the keys {list(_STAGE_FIELDS)}")
            stage_choices.append({f: _options(source, f"stages[{i}].{f}", slot[f]) for f in _STAGE_FIELDS})
        bad_counts = [n for n in choices["num_stages"] if not (isinstance(n, int) and 1 <= n <= len(stages))]
        if bad_counts:
            raise ConfigError(f"{source}: num_stages {bad_counts} must lie in [1, {len(stages)}]")
        space = cls(str(data["name"]), str(data.get("description", "")), choices, tuple(stage_choices))
        # Check every option by building the extreme specs once: a bad kernel size or sparsity
        # in the file is reported here, naming the field, not during a search.
        for pick in (0, -1):
            space.build(lambda name, opts: opts[pick])
        return space

    @classmethod
    def from_yaml(cls, path: Path) -> "SearchSpace":
        return cls.from_dict(load_yaml(path), source=str(path))

    # --- sampling --------------------------------------------------------------------------
    def parameters(self) -> list[tuple[str, tuple]]:
        """Every parameter name with its options, in the order `build` draws them."""
        params = [(f, self.choices[f]) for f in _TOP_FIELDS]
        for i, slot in enumerate(self.stage_choices, start=1):
            params += [(f"stage{i}_{f}", slot[f]) for f in _STAGE_FIELDS]
        return params

    def build(self, choose: Chooser) -> ArchSpec:
        """Draw every parameter through `choose(name, options)` and assemble the spec."""
        values = {name: choose(name, list(opts)) for name, opts in self.parameters()}
        stages = tuple(
            StageSpec(**{f: values[f"stage{i}_{f}"] for f in _STAGE_FIELDS})
            for i in range(1, values["num_stages"] + 1)
        )
        top = {f: values[f] for f in _TOP_FIELDS if f != "num_stages"}
        return ArchSpec(stages=stages, **top)

    def sample(self, rng: np.random.Generator) -> ArchSpec:
        return self.build(lambda name, opts: opts[int(rng.integers(len(opts)))])

    def from_params(self, params: Mapping[str, Any]) -> ArchSpec:
        """The spec of an Optuna trial's parameters (all names from `parameters()`)."""
        missing = [name for name, _ in self.parameters() if name not in params]
        if missing:
            raise ConfigError(f"parameters missing for space {self.name!r}: {missing}")
        return self.build(lambda name, opts: params[name])

    def to_params(self, spec: ArchSpec) -> dict[str, Any]:
        """Parameters that rebuild `spec`; unused stage slots get their first option."""
        self.validate(spec)
        params = {f: getattr(spec, f) for f in _TOP_FIELDS if f != "num_stages"}
        params["num_stages"] = len(spec.stages)
        for i, slot in enumerate(self.stage_choices, start=1):
            for f in _STAGE_FIELDS:
                used = i <= len(spec.stages)
                params[f"stage{i}_{f}"] = getattr(spec.stages[i - 1], f) if used else slot[f][0]
        return params

    # --- checking --------------------------------------------------------------------------
    def validate(self, spec: ArchSpec) -> None:
        """Raise ConfigError naming the first field of `spec` that this space does not allow."""
        for f in _TOP_FIELDS:
            value = len(spec.stages) if f == "num_stages" else getattr(spec, f)
            _require(self.name, f, value, self.choices[f])
        for i, (stage, slot) in enumerate(zip(spec.stages, self.stage_choices)):
            for f in _STAGE_FIELDS:
                _require(self.name, f"stages[{i}].{f}", getattr(stage, f), slot[f])

    def size(self) -> int:
        """Number of distinct parameter combinations (an upper bound on distinct specs)."""
        return int(np.prod([len(opts) for _, opts in self.parameters()], dtype=float))


def _options(source: str, field: str, value: Any) -> tuple:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{source}: {field} must be a non-empty list of options, got {value!r}")
    if len(set(map(repr, value))) != len(value):
        raise ConfigError(f"{source}: {field} lists an option twice: {value!r}")
    return tuple(value)


def _require(space: str, field: str, value: Any, options: tuple) -> None:
    if value not in options or type(value) is bool:
        raise ConfigError(f"{field}: {value!r} is not allowed by space {space!r}; allowed: {list(options)}")


def space_names() -> list[str]:
    return catalog_names("search_spaces")


def load_space(name: str) -> SearchSpace:
    """The search space called `name` from the catalog, or UnknownNameError listing them."""
    return SearchSpace.from_yaml(catalog_file("search_spaces", name))
