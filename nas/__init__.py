"""Hardware-aware neural architecture search for TinyML.

The public API is re-exported here lazily, so `import nas` (and `nas --help`) stays fast:
TensorFlow, LiteRT and TFLite Micro are imported only by the functions that use them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ArchSpec": "spec", "StageSpec": "spec", "QUANT_MODES": "spec",
    "SearchSpace": "space", "load_space": "space", "space_names": "space",
    "Dataset": "data", "load_dataset": "data", "dataset_names": "data", "prepare": "data",
    "plan": "plan", "count_params": "plan", "count_macs": "plan", "activation_peak_bytes": "plan",
    "build_model": "build",
    "TrainConfig": "train",
    "convert": "convert",
    "CandidateResult": "pipeline", "evaluate_candidate": "pipeline", "evaluate_modes": "pipeline", "measure_tflite": "pipeline",
    "NasError": "errors", "ConfigError": "errors", "UnknownNameError": "errors", "DataError": "errors",
    "InfeasibleBudgetError": "errors", "DependencyError": "errors", "CandidateFailed": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
