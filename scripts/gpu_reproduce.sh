#!/usr/bin/env bash
# The GPU reproduction as run on a lent GPU machine: benchmark, then the published recipe.
# Usage: scripts/gpu_reproduce.sh OUT_DIR   (TINY=1: a seconds-long CPU rehearsal of the same steps)
# Runs stop at a deadline (BUDGET_S) so that what finished is always collected.
set -u
out=${1:?usage: scripts/gpu_reproduce.sh OUT_DIR}
budget=${BUDGET_S:-540}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
started=$(date +%s)
left() { echo $((budget - ($(date +%s) - started))); }
if [ "${TINY:-0}" = 1 ]; then
  device=cpu; bench="--steps 2 --warmup 1"; long="--epochs 1 --subset 640 --test-subset 200"; short="$long"
else
  device=cuda; bench="--steps 700"; long="--epochs 100"; short="--epochs 30"
fi
train() { python3 -m helpers.train --device $device --pipeline fast --no-progress --overwrite "$@"; }
mkdir -p "$out" runs
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true) | tee "$out/log.txt"
python3 -m helpers.bench --device $device $bench --out "$out/bench.json" 2>&1 | tee -a "$out/log.txt"
# The headline run alone on the GPU, so that its timing is clean.
timeout $(($(left) - 40)) bash -c "$(declare -f train); device=$device; train $long --seed 1 --out runs/seed1-100ep" 2>&1 | tee -a "$out/log.txt"
# Then, sharing the GPU (their timings are not standalone): a second seed, a 30-epoch
# schedule, and batch 512 with the learning rate scaled linearly (0.017 * 8).
deadline=$(($(left) - 20))
timeout $deadline bash -c "$(declare -f train); device=$device; train $long --seed 2 --out runs/seed2-100ep" > "$out/seed2.log" 2>&1 &
timeout $deadline bash -c "$(declare -f train); device=$device; train $short --seed 1 --out runs/seed1-30ep" > "$out/short.log" 2>&1 &
timeout $deadline bash -c "$(declare -f train); device=$device; train $long --seed 1 --batch-size 512 --max-lr 0.136 --out runs/bs512-100ep" > "$out/bs512.log" 2>&1 &
wait
cat "$out"/seed2.log "$out"/short.log "$out"/bs512.log >> "$out/log.txt"; rm -f "$out"/seed2.log "$out"/short.log "$out"/bs512.log
tar -cf "$out/runs.tar" runs/*/history.json runs/seed1-100ep/checkpoint.pt
python3 -m helpers.summary runs/* | tee -a "$out/log.txt"
echo "wall seconds: $(($(date +%s) - started))" | tee -a "$out/log.txt"
