"""What a search gives people: its report, deployable exports, and the comparison with the
study's hand-picked baselines.

    write_outputs, TRIAL_COLUMNS, PARETO_COLUMNS         trials.csv, pareto.csv, report.md, pareto.png (`_report`)
    read_pareto, latency_provenance                      ... a pareto.csv read back; where its latency comes from
    export_model, MIN_TFLM_AGREEMENT                     .tflite, C array, model card, TFLite Micro check (`_export`)
    firmware_record, golden_pair                         ... its firmware/ sources, measured on a core where built (`_firmware`)
    c_identifier, c_source                               the model as C source (`_cfiles`)
    compare                                              Pareto front against baselines (`_compare`)
    run_baselines, write_baselines, read_split, ...      the study's models through its eight columns (`_baselines`)
    pyplot, save_png                                     figures, when matplotlib is installed (`_plots`)
    serve_dashboard                                      optuna-dashboard on a search's study (`_dashboard`)
"""

from ._baselines import (COLUMNS, MODELS, BaselineRow, build_baseline, paper_results, read_baselines, read_split,
                         run_baselines, study_input_size, write_baselines)
from ._cfiles import C_KEYWORDS, c_identifier, c_source
from ._compare import compare
from ._dashboard import DASHBOARD_INSTALL, serve_dashboard
from ._export import MIN_TFLM_AGREEMENT, export_model
from ._firmware import firmware_record, golden_pair
from ._plots import pyplot, save_png
from ._report import PARETO_COLUMNS, PARETO_RENAMES, TRIAL_COLUMNS, TRIAL_RENAMES, latency_provenance, read_pareto, write_outputs

__all__ = ["COLUMNS", "MODELS", "BaselineRow", "build_baseline", "paper_results", "read_baselines", "read_split", "run_baselines",
           "study_input_size", "write_baselines", "C_KEYWORDS", "c_identifier", "c_source", "compare", "DASHBOARD_INSTALL", "serve_dashboard", "MIN_TFLM_AGREEMENT",
           "export_model", "firmware_record", "golden_pair", "pyplot", "save_png", "PARETO_COLUMNS", "TRIAL_COLUMNS",
           "PARETO_RENAMES", "TRIAL_RENAMES", "latency_provenance", "read_pareto", "write_outputs"]
