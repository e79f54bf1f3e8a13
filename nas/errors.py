"""The exception tree of the `nas` package.

    NasError                      every error this package raises on purpose
    ├── ConfigError               a value the user gave is invalid (spec, flag, study file)
    │   └── UnknownNameError      a name that is not registered (dataset, space, mode, ...)
    ├── DataError                 a dataset file is missing, corrupt or mis-shaped
    ├── InfeasibleBudgetError     no candidate of the space can meet the budget
    ├── DependencyError           an optional dependency is missing (says how to install it)
    └── CandidateFailed           one candidate failed (conversion, allocation, NaN loss, ...):
                                  the search records the trial as failed and goes on

User mistakes (everything but `CandidateFailed`) are printed by the CLI as one line and the
process exits non-zero without a traceback.
"""

from __future__ import annotations

from typing import Iterable

__all__ = [
    "NasError",
    "ConfigError",
    "UnknownNameError",
    "DataError",
    "InfeasibleBudgetError",
    "DependencyError",
    "CandidateFailed",
]


class NasError(Exception):
    """Base class of every error raised on purpose by this package."""


class ConfigError(NasError):
    """A value given by the user is invalid; the message names the field and what is allowed."""


#: Beyond this many valid names (the board catalog), an unknown name gets the closest ones instead.
MAX_LISTED = 20


class UnknownNameError(ConfigError):
    """A name that is not in a registry; the message lists the valid names."""

    def __init__(self, kind: str, name: object, valid: Iterable[str]):
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        if len(self.valid) <= MAX_LISTED:
            super().__init__(f"unknown {kind} {name!r}; valid {plural}: {', '.join(self.valid)}")
            return
        import difflib

        # names the unknown one begins first (every version of a board and runtime), or else those that
        # hold it as a whole part (a runtime, a part number), then the closest spellings
        prefixed = [v for v in self.valid if v.startswith(str(name))] or \
            [v for v in self.valid if f"-{name}-" in f"-{v}-"]
        close = (prefixed + [v for v in difflib.get_close_matches(str(name), self.valid, n=5, cutoff=0.5)
                             if v not in prefixed])[:max(5, len(prefixed))]
        listing = {"device": "`nas devices`", "study": "`nas studies`"}.get(kind, "the catalog")
        super().__init__(f"unknown {kind} {name!r}; " + (f"closest: {', '.join(close)}; " if close else "")
                         + f"{len(self.valid)} valid {plural}, {listing} lists them")


class DataError(NasError):
    """A dataset cannot be loaded: missing, corrupt or mis-shaped files."""


class InfeasibleBudgetError(NasError):
    """No candidate of the search space can meet the budget."""


class DependencyError(NasError):
    """An optional dependency is not installed; the message gives the install command."""


class CandidateFailed(NasError):
    """One candidate failed; the search marks its trial failed with `stage` and `reason`."""

    def __init__(self, stage: str, reason: str):
        self.stage = stage
        self.reason = reason
        super().__init__(f"{stage} failed: {reason}")
