#!/usr/bin/env bash
# The msexplore command, headless: tune a small matmul, look at the run, export its best kernel, load it back.
#   bash examples/cli_run.sh [WORK_ROOT]      (default: ./msexplore-cli-example; about a minute on 2 cores)
# Exit codes a script can branch on: 0 ok, 2 bad input, 3 search failed / no valid candidate, 130 Ctrl-C.
set -euo pipefail
root=${1:-msexplore-cli-example}
msexplore=${MSEXPLORE:-msexplore}   # e.g. MSEXPLORE=".venv/bin/msexplore" or "python -m msexplore"
python=${PYTHON:-python}            # the Python that has msexplore installed

$msexplore workloads GMM                   # the parameters and defaults of an operator

# 16 trials in batches of 8; progress lines go to stderr, the summary to stdout. Running the same command again
# continues from the records in --work-dir. Ctrl-C stops after the batch being measured and keeps every record.
$msexplore tune GMM --shape n=128,m=128,k=128 --trials 16 --batch-size 8 \
  --strategy-option population_size=64 --work-dir "$root/runs/gmm" --export "$root/out/gmm" --overwrite

$msexplore show "$root/runs/gmm" --top 3   # status, config, trials, failures, the best candidates

# --json for scripts: e.g. the best latency of the run
$msexplore show "$root/runs/gmm" --json | "$python" -c 'import json, sys; print("best latency (s):", json.load(sys.stdin)["best"]["latency_s"])'

# export again elsewhere (tune --export already wrote one); refuses an existing folder without --overwrite
$msexplore export "$root/runs/gmm" "$root/out/gmm-copy" --overwrite

# the bundle loads without msexplore's state and runs on numpy arrays
"$python" - "$root/out/gmm-copy" <<'PY'
import sys
import numpy as np
from msexplore.export import load_kernel

kernel = load_kernel(sys.argv[1])
x, y, z = kernel.workload.make_inputs(seed=0)
print("max abs error vs numpy:", float(np.abs(kernel(x, y) - x @ y).max()))
PY
