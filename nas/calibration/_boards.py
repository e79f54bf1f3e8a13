"""The microcontroller board catalog: one profile per (part, clock, runtime, runtime version, variant)
from the MLPerf Tiny inference results (`latency_models/mlperf_tiny_cortex_m.csv`), with memory from
the part's datasheet (`latency_models/mcu_parts.csv`).

The rows are the closed-division Cortex-M results of rounds v0.5 to v1.3, copied from the table in
`shared/reference/mlperf_tiny_latency.csv` (each row names the results file it came from in
`source_path`, in the mlcommons/tiny_results_v* repositories). A profile needs at least three of the
four reference models: with fewer, no leave-one-model-out error can be stated.
"""

from __future__ import annotations

import csv
import re
import statistics
from dataclasses import dataclass, field

from ..catalog import catalog_dirs
from ..errors import ConfigError

__all__ = ["BoardProfile", "board_rows", "board_parts", "board_profiles", "MIN_REFS", "REFERENCE_OF_MODEL",
           "RUNTIME_FAMILIES", "CORE_CLASSES", "LEFT_OUT"]

ROWS_FILE = "mlperf_tiny_cortex_m.csv"
PARTS_FILE = "mcu_parts.csv"
MIN_REFS = 3

#: `model` column -> the reference model (nas.calibration REFERENCE_MODELS key)
REFERENCE_OF_MODEL = {"ResNet-8": "ResNet-8 (CIFAR-10)", "DS-CNN": "DS-CNN (Speech Commands)",
                      "MobileNetV1 0.25": "MobileNetV1 0.25x", "FC-AutoEncoder": "FC autoencoder (ToyADMOS)"}

#: the table's runtime spellings -> (family slug, the `runtime` a device profile names)
RUNTIME_FAMILIES = {
    "TensorFlow Lite for Microcontrollers": "tflm", "tflite-micro": "tflm", "Tensorflow Lite Micro": "tflm",
    "TensorFlow Lite for micro": "tflm", "X-CUBE-AI": "xcubeai", "STEDGE-AI Internal version": "stedgeai",
    "Plumerai Inference Engine": "plumerai", "Bosch Hardware-Aware Lowering Engine (HALE)": "hale",
    "microTVM": "microtvm", "ONNC": "onnc",
}
CORE_CLASSES = ("Cortex-M0+", "Cortex-M4", "Cortex-M7", "Cortex-M33", "Cortex-M85")

#: What the catalog leaves out of the table, and why (printed by the benchmark, kept in the artifact).
LEFT_OUT = [
    "accelerators, FPGAs and application processors (Syntiant's NDP, GAP9's NE16, hls4ml/FINN/fpgaConvNet, Cortex-A, "
    "Snapdragon, the K1 RISC-V): their runtimes do not execute a TFLite model kernel by kernel on a microcontroller core",
    "TFLite Micro and other runtimes on non-Arm microcontroller cores (Renesas RX65N and RH850, RV32IMAC, Andes D25F/D45, "
    "XuanTie C906): not yet in the catalog; their results name no kernel library, so which cost shape they follow is "
    "unknown, and each core class would rest on one board",
    "open-division rows: other models than the four reference models",
    "Bosch HALE float variants: the profiles price int8 models",
    "profiles with fewer than 3 of the 4 reference models (no leave-one-model-out error possible)",
]


@dataclass
class BoardProfile:
    name: str
    part: str
    board: str  # the submitters' system ids
    core: str
    clock_mhz: float
    runtime: str  # family slug
    runtime_name: str  # as the table spells it
    version: str
    variant: str
    latency_ms: dict[str, float] = field(default_factory=dict)  # reference model -> median published ms
    energy_uj: dict[str, float] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    sram_kb: float | None = None
    flash_kb: float | None = None
    memory_source: str = ""
    accelerator: str = ""

    @property
    def family_version(self) -> str:
        return f"{self.runtime}:{self.version}"


def _catalog_csv(name: str) -> list[dict]:
    for folder in catalog_dirs("latency_models"):
        if (folder / name).is_file():
            with open(folder / name, newline="") as fh:
                return list(csv.DictReader(fh))
    raise ConfigError(f"latency_models/{name} is missing: the microcontroller profiles are fitted on it")


def board_rows() -> list[dict]:
    """The published Cortex-M timings the catalog is fitted on."""
    return _catalog_csv(ROWS_FILE)


def board_parts() -> list[dict]:
    """Parts with SRAM and flash from their datasheets (empty where not checked)."""
    return _catalog_csv(PARTS_FILE)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.+]+", "-", text.lower()).strip("-")


def _part(row: dict, parts: list[dict]) -> dict:
    processor = row["processor"]
    if processor.startswith("STM32U575ZIT6QU") and row["core"] == "Cortex-M7":
        # Plumerai v1.1's NUCLEO-H7A3ZI-Q system file names the U575 part by a copy-paste slip; its
        # README and the Cortex-M7 at 280 MHz say STM32H7A3 (mlperf_tiny_latency.md, caveats).
        processor = "STM32H7A3ZIT6QU"
    for part in parts:
        if processor.startswith(part["match"]):
            return part
    raise ConfigError(f"{ROWS_FILE}: processor {row['processor']!r} is in no row of {PARTS_FILE}")


def _version(row: dict) -> str:
    version = row["runtime_version"].strip()
    if version.startswith("commit ") or version.startswith("TVM commit "):
        return version.split()[-1][:8]
    if re.fullmatch(r"\d+\.\d+\.0", version) and row["runtime"] == "X-CUBE-AI":
        version = version[:-2]  # X-CUBE-AI 9.0.0 and 9.0 are one release, spelt two ways
    return version or f"r{row['round'].lstrip('v')}"  # no version given: the round it was submitted in


def _variant(row: dict) -> str | None:
    """The build variant a system id encodes; None for rows the catalog leaves out."""
    system = row["system"].lower()
    if system.endswith("_float"):
        return None
    for key, name in (("max_performance", "maxperf"), ("min_ram", "minram"), ("cmsis", "cmsisnn"),
                      ("native", "native"), ("mbed_os", "mbedos"), ("zephyr", "zephyr")):
        if key in system:
            return name
    return ""


def _family(row: dict) -> str | None:
    """The runtime family a row's timings follow. TFLite Micro splits three ways: CMSIS-NN's kernels
    (the v0.5 reference submission builds TFLite Micro 2.3.1 with `TAGS=cmsis-nn`, "enable CMSIS-NN"
    in mlcommons/tiny v0.5/reference_submissions/*/setup_example.sh; RA6M4's system file names CMSIS);
    CMSIS-NN's Helium (MVE) vector kernels (RA8D1, Renesas' Cortex-M85 port: another cost shape than
    the DSP-extension ones); Silicon Labs' xG24, which hands matrix work to its MVP accelerator. No
    published row runs TFLite Micro's reference kernels: family `tflm` is theirs, for a user's own."""
    family = RUNTIME_FAMILIES.get(row["runtime"])
    if family != "tflm":
        return family
    if "MVP" in row["accelerator"]:
        return "tflm-mvp"
    if row["core"] == "Cortex-M85":
        return "tflm-helium"
    return "tflm-cmsisnn"


def board_profiles(rows: list[dict] | None = None) -> list[BoardProfile]:
    """Group the rows into profiles; a profile keeps the median of repeated results per model."""
    rows = board_rows() if rows is None else rows
    parts = board_parts()
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        variant = _variant(row)
        if variant is None or row["model"] not in REFERENCE_OF_MODEL or row["division"] != "closed":
            continue
        family = _family(row)
        if family is None or row["core"] not in CORE_CLASSES:
            continue
        part = _part(row, parts)
        key = (part["part"], row["core"], float(row["clock_mhz"]), family, _version(row), variant)
        groups.setdefault(key, []).append(row)
    profiles = []
    for (part_name, core, clock, family, version, variant), members in groups.items():
        part = next(p for p in parts if p["part"] == part_name)
        latency: dict[str, list[float]] = {}
        energy: dict[str, list[float]] = {}
        for row in members:
            ref = REFERENCE_OF_MODEL[row["model"]]
            latency.setdefault(ref, []).append(float(row["latency_ms"]))
            if row["energy_uj"]:
                energy.setdefault(ref, []).append(float(row["energy_uj"]))
        if len(latency) < MIN_REFS:
            continue
        core_slug = core.lower().replace("+", "p")
        name = "-".join(x for x in (core_slug, _slug(part_name).replace("-", ""), family, _slug(version), variant) if x)
        profiles.append(BoardProfile(
            name=name, part=part_name, board=", ".join(sorted({r["system"] for r in members})), core=core,
            clock_mhz=clock, runtime=family, runtime_name=members[0]["runtime"], version=version, variant=variant,
            latency_ms={k: statistics.median(v) for k, v in latency.items()},
            energy_uj={k: statistics.median(v) for k, v in energy.items()},
            sources=sorted({r["source_path"] for r in members}),
            sram_kb=float(part["sram_kb"]) if part["sram_kb"] else None,
            flash_kb=float(part["flash_kb"]) if part["flash_kb"] else None,
            memory_source=part["datasheet"] or part["note"],
            accelerator=members[0]["accelerator"]))
    names = [p.name for p in profiles]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"board catalog: profile names collide: {sorted(duplicates)}")
    return sorted(profiles, key=lambda p: (CORE_CLASSES.index(p.core), p.part, p.runtime, p.version, p.variant))
