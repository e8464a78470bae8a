#!/usr/bin/env bash
# GPU benchmark of the paper and mini models (not yet timed on a GPU); prints JSON lines.
# Without a GPU it runs a dry pass on the CPU so that it cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
if $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  exec $PY benchmarks/gpu.py --seconds "${SECONDS_PER_POINT:-20}" "$@"
else
  echo '{"note": "no CUDA device: dry run on the CPU"}'
  exec $PY benchmarks/gpu.py --dry "$@"
fi
