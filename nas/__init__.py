"""Hardware-aware neural architecture search for TinyML.

    import nas
    config = nas.load_study("digits_demo", trials=10)
    summary = nas.run_search(config, "runs/demo")          # the search, then its outputs
    card = nas.export_model("runs/demo", "deploy/")        # the best model, verified in TFLite Micro
    nas.load_device("cortex-m4-stm32l4r5-tflm-cmsisnn-2.3.1").predict("deploy/model.tflite")

The public API is re-exported here lazily, so `import nas` (and `nas --help`) stays fast:
TensorFlow, LiteRT and TFLite Micro are imported only by the functions that use them. Each
concept is a subpackage with its own public names: `nas.spec`, `nas.data`, `nas.measure`,
`nas.candidate`, `nas.latency`, `nas.calibration`, `nas.search`, `nas.outputs`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> (module, name in it)
_EXPORTS = {
    "load_study": ("search", "load_study"), "run_search": ("workflow", "run_search"),
    "load_device": ("latency", "load_device"), "export_model": ("outputs", "export_model"),
    "evaluate": ("candidate", "evaluate_candidate"), "evaluate_modes": ("candidate", "evaluate_modes"),
    "ArchSpec": ("spec", "ArchSpec"), "StageSpec": ("spec", "StageSpec"), "QUANT_MODES": ("spec", "QUANT_MODES"),
    "SearchSpace": ("spec", "SearchSpace"), "load_space": ("spec", "load_space"), "space_names": ("spec", "space_names"),
    "Dataset": ("data", "Dataset"), "load_dataset": ("data", "load_dataset"), "dataset_names": ("data", "dataset_names"),
    "TrainConfig": ("candidate", "TrainConfig"), "CandidateResult": ("candidate", "CandidateResult"),
    "StudyConfig": ("search", "StudyConfig"), "Budgets": ("search", "Budgets"), "SearchSummary": ("search", "SearchSummary"),
    "Device": ("latency", "Device"), "Prediction": ("latency", "Prediction"), "device_names": ("latency", "device_names"),
    "NasError": ("errors", "NasError"), "ConfigError": ("errors", "ConfigError"),
    "UnknownNameError": ("errors", "UnknownNameError"), "DataError": ("errors", "DataError"),
    "InfeasibleBudgetError": ("errors", "InfeasibleBudgetError"), "DependencyError": ("errors", "DependencyError"),
    "CandidateFailed": ("errors", "CandidateFailed"),
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
