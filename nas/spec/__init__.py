"""What a candidate is: the architecture spec, the search space it is drawn from, the layer plan
every estimate reads, and the Keras builder that makes exactly those layers.

    ArchSpec, StageSpec, QUANT_MODES, ...   a frozen, validated, hashed spec (`_arch`)
    SearchSpace, load_space, space_names    search-space catalog files (`_space`)
    plan, check_io, count_params, ...       the layer plan and analytic costs (`_plan`)
    build_model                             spec -> tf-keras model (`_build`; imports TensorFlow when called)
    build_baseline, BASELINE_MODELS         the study's hand-picked models, as Keras builders (`_baselines`)
"""

from ._arch import MAX_SPARSITY, QUANT_MODES, ArchSpec, StageSpec
from ._baselines import BASELINE_MODELS, build_baseline, study_input_size
from ._build import build_model
from ._plan import (BYTES_PER_ACTIVATION, BYTES_PER_WEIGHT, Layer, activation_peak_bytes, check_io, count_deployed_params,
                    count_macs, count_params, plan, weight_bytes)
from ._space import SearchSpace, load_space, space_names

__all__ = ["BASELINE_MODELS", "build_baseline", "study_input_size", "MAX_SPARSITY", "QUANT_MODES", "ArchSpec", "StageSpec", "build_model", "BYTES_PER_ACTIVATION", "BYTES_PER_WEIGHT", "Layer",
           "activation_peak_bytes", "check_io", "count_deployed_params", "count_macs", "count_params", "plan", "weight_bytes",
           "SearchSpace", "load_space", "space_names"]
