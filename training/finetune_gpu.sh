#!/bin/bash
# Fine-tuning stage on a lent GPU machine, in one 10-minute call: data, training, export.
#   bash training/finetune_gpu.sh RECIPE INIT_BUNDLE FIRST_SEED VERSION
# e.g. bash training/finetune_gpu.sh training/lowerleg-unet-stage7.yaml models/lowerleg-unet 600 0.5.0
# Run from the repository root with the wheels of monai, nibabel and pydicom in .whl/ (the machine
# has torch but cannot reach a package index). Writes to $OUT: the recipe as run (its max_minutes
# set to what the call has left: CALL_SECONDS, default 540), log.csv, run.json and the exported bundle/.
set -u
RECIPE=$1 INIT=$2 SEED=$3 VERSION=$4
export PYTHONUNBUFFERED=1
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
DATA=.gpuwork/Dataset_seed$SEED
NAME=$(basename "$RECIPE")
[ -f $DATA/dataset.json ] || OMP_NUM_THREADS=1 python3 -m alsseg dataset --synthetic 32 --seed "$SEED" \
    --contrasts mese_e1,t1w,random,mese_e1,t1w,dixon_water,dwi_b0,random --grids-per-subject 2 \
    --als-fraction 0.5 --val-fraction 0.05 --workers 16 --out $DATA -q || exit 1
left=$(( ${CALL_SECONDS:-540} - ($(date +%s) - t0) ))             # seconds the call has left, less export and margin
minutes=$(python3 -c "print(round(max(1.0, ($left - 45) / 60), 2))")
sed "s/^  max_minutes: .*/  max_minutes: $minutes/" "$RECIPE" > "$OUT/$NAME"
echo "data ready after $(( $(date +%s) - t0 )) s; training budget $minutes min"
python3 -m alsseg train --recipe "$OUT/$NAME" --data $DATA --out .gpuwork/run --init "$INIT" -q || exit 1
cp .gpuwork/run/log.csv .gpuwork/run/run.json "$OUT/"
python3 -m alsseg export .gpuwork/run --name lowerleg-unet --version "$VERSION" --changelog "GPU stage ($NAME)" \
    --out "$OUT/bundle" || exit 1
tail -3 "$OUT/log.csv"; echo "done after $(( $(date +%s) - t0 )) s"
