#!/usr/bin/env bash
# The batch benchmark on a GPU (docs/BATCH.md, "GPU"): clips/s against the encode_image floor, the
# GPU's utilisation and peak memory, for a real CLIP's compute (ViT-B/16, random weights: no
# download) and the demo model, with few and many decoding workers. About 5 minutes on one H100.
# Smoke-test it anywhere: DEVICE=cpu CLIPS=16 MODEL=kgclip-tiny bash benchmarks/gpu_batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
CLIPS=${CLIPS:-400}
MODEL=${MODEL:-ViT-B-16}
BATCH=${BATCH:-32}
if [[ $DEVICE == cuda* ]]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; fi
echo "cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for workers in 2 8; do
  "$PY" benchmarks/bench_batch.py --clips "$CLIPS" --model "$MODEL" --device "$DEVICE" --batch-size "$BATCH" --workers "$workers"
done
"$PY" benchmarks/bench_batch.py --clips "$CLIPS" --checkpoint checkpoints/synthetic --device "$DEVICE" --batch-size "$BATCH" --workers 8
