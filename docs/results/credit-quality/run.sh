#!/usr/bin/env bash
# The credit-quality run as executed (resumable: rerun to continue; finished groups in groups.jsonl are skipped).
# From the repository root, with the environment of /work/shared/guides/ENVIRONMENT.md (OMP_NUM_THREADS=1 etc.).
set -euo pipefail
out=docs/results/credit-quality
python -m papermill nbs/experiments/credit_quality.ipynb "$out/credit_quality_run.ipynb" \
  -p model_name smollm2-135m-instruct -p groups 200 -p num_generations 8 -p max_tokens 48 -p temperature 0.7 \
  -p terms 3 -p low 1 -p high 4 -p operators "+" -p shots 4 -p stride 3 -p k 8 -p radius 2 -p reward chain \
  -p seed 0 -p precision auto -p time_budget_s "${TIME_BUDGET_S:-4800}" -p out_dir "$out" -k python3 --language python
python -m papermill nbs/experiments/credit_quality_report.ipynb "$out/credit_quality_report_run.ipynb" \
  -p results "$out" -p out_dir "$out" -p title "credit-quality: SmolLM2-135M-Instruct, chain arithmetic (3 x 1-4, +)" \
  -p rerun "bash docs/results/credit-quality/run.sh" -k python3 --language python
