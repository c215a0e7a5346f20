#!/usr/bin/env bash
# On a machine with a CUDA GPU: the quick demo on the GPU (bf16 autocast), then the throughput of the real
# training steps (teacher, graph-guided student, GNN forward+backward) and peak GPU memory; prints the figures.
#   scripts/gpu_check.sh [OUT_DIR]        (default: runs/gpu-check-<time>)
# The test suite never needs a GPU; this script is how the CUDA path is checked and measured.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "gpu_check: no .venv; run scripts/setup.sh first" >&2; exit 1; }
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
  || { echo "gpu_check: torch sees no CUDA device ($("$PY" -c 'import torch; print(torch.__version__)'))" >&2; exit 1; }
out=${1:-runs/gpu-check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  | tee "$out/gpu.txt"
start=$(date +%s.%N)
.venv/bin/kgdistill demo --quick --quiet --out "$out/demo" --set train.device=cuda | tee "$out/demo.txt"
end=$(date +%s.%N)
echo "gpu_check: quick demo on cuda: $("$PY" -c "print(round($end - $start, 1))") s end to end" | tee -a "$out/demo.txt"
"$PY" scripts/gpu_throughput.py --device cuda --out "$out/throughput.json"
echo "gpu_check: figures in $out (demo.txt, throughput.json)"
