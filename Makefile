# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONHASHSEED := 0

.PHONY: setup demo test test-fast bench clean arm arm-deps cluster-deps audio-deps

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nas search studies/digits_demo.yaml --out runs/demo
	$(BIN)/nas pareto runs/demo
	$(BIN)/nas export runs/demo --best --out runs/demo/deploy
	@echo "Report: runs/demo/report.md (plot: runs/demo/pareto.png); deployable model: runs/demo/deploy/"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

bench: $(STAMP)   # about two hours on 2 cores; figures go to benchmarks/README.md
	$(BIN)/python benchmarks/candidate_pipeline.py
	$(BIN)/python benchmarks/search_throughput.py --trials 6
	$(BIN)/python benchmarks/strategies.py --trials 24
	$(BIN)/python benchmarks/ray_scaling.py --workers 1 2
	$(BIN)/python benchmarks/latency_models.py --samples 300 --cache runs/latency-cache --wallclock 150

# The Arm (Cortex-M) build of TFLite Micro, for `nas measure` and the cortex-m*-qemu-* devices:
# the OS's cross-compiler and QEMU, then TFLite Micro and CMSIS-NN at pinned versions, built for
# every core and kernel set (minutes each, once; kept in ~/.cache/tinyml-nas/arm).
ARM_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-user build-essential patch
arm-deps:
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-arm >/dev/null && command -v patch >/dev/null; then exit 0; fi; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get install -y -q --no-install-recommends $(ARM_PACKAGES) >/dev/null 2>&1 || \
	{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends $(ARM_PACKAGES) >/dev/null; }

# A PostgreSQL server for the shared-study tests (tests/test_shared_study.py starts its own on loopback).
cluster-deps:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 || \
	{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends postgresql >/dev/null; }

audio-deps:
	@if command -v espeak-ng >/dev/null; then exit 0; fi; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get install -y -q --no-install-recommends espeak-ng >/dev/null 2>&1 || \
	{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends espeak-ng >/dev/null; }

arm: $(STAMP) arm-deps
	$(BIN)/nas firmware build --all

clean:
	rm -rf runs build dist *.egg-info .pytest_cache
