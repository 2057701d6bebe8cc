#!/usr/bin/env bash
# The GPU runs behind results/, in one call of the device tool: the benchmark (with its model-only
# row), the published recipe (seed 1), then 8 seeds at once, then the test suite on CUDA.
# Usage: scripts/gpu_reproduce.sh OUT_DIR   (TINY=1: a seconds-long CPU rehearsal of the same steps)
# Every step stops at a deadline (BUDGET_S, default 540 s in all) so that what finished is always
# collected: logs, histories and the last checkpoints land in OUT_DIR.
# On the GPU machine: CIFAR10_ROOT must point at the unpacked data, and .whl/ (../shared/gpu/README.md)
# holds the wheels its Python lacks; they are installed into /tmp/site, never over its torch.
set -u
out=${1:?usage: scripts/gpu_reproduce.sh OUT_DIR}
budget=${BUDGET_S:-540}
export PYTHONUNBUFFERED=1
started=$(date +%s)
left() { echo $((budget - ($(date +%s) - started))); }
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
if [ "${TINY:-0}" = 1 ]; then
  device=cpu; bench="--dry-run"; recipe="--smoke"; seeds=1-2; tests="tests/machinery/test_hardware.py tests/test_trainer.py"
else
  device=cuda; bench="--steps 700"; recipe="--epochs 100"; seeds=1-8; tests="tests"
fi
mkdir -p "$out" runs
log="$out/log.txt"
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no GPU") | tee "$log"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$log"
# step NAME RESERVE COMMAND...: run COMMAND until RESERVE seconds of the budget are left for what follows.
step() { local name=$1 limit=$(($(left) - $2)); shift 2
  if [ "$limit" -le 0 ]; then echo "== $name: skipped, no time left" | tee -a "$log"; return; fi
  echo "== $name (at most $limit s)" | tee -a "$log"
  timeout "$limit" "$@" 2>&1 | tee -a "$log"; }
step bench 420 python3 -m helpers bench --device $device $bench --out "$out/bench.json"
# The headline run alone on the device, so that its timing is clean.
step recipe 240 python3 -m helpers train --device $device --no-progress --overwrite $recipe --seed 1 --out runs/seed1-100ep
step seeds 90 python3 -m helpers seeds --seeds $seeds --out-dir runs/seeds --device $device $recipe --overwrite
step tests 10 python3 -m pytest -q -x -m "not notebooks" $tests
step notebooks 5 python3 -m pytest -q -m notebooks -p no:cacheprovider tests/test_notebooks.py
tar -cf "$out/runs.tar" runs/*/history.json runs/seeds/*/history.json runs/seed1-100ep/checkpoint.pt 2>/dev/null
python3 -m helpers summary runs/seed1-100ep runs/seeds/seed*/ 2>&1 | tee -a "$log"
echo "wall seconds: $(($(date +%s) - started))" | tee -a "$log"
