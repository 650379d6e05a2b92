#!/bin/bash
# Stage 16 on one lent GPU machine (one H200, 16 cores), run from the repository root:
#   1. 96 fresh phantom subjects (seeds 1600-1695, 768 volumes) written with 16 processes;
#   2. three runs side by side on the one GPU, each with a 5.5-minute budget:
#      16a fine-tunes stage 15 (models/lowerleg-unet's first member), 16b fine-tunes v0.5.0
#      (.carry/bundle-v050, the bundle as committed in 8459cc2: `git archive 8459cc2 models/lowerleg-unet | tar x -C /tmp`
#      then copy it there; .carry/ is in .git/info/exclude and travels with `carry`), 16c trains the same network
#      from scratch;
#   3. each run's run.json, log.csv, best.pt and last weights (optimiser state dropped) packed into
#      $OUT/run_16X.tgz for `alsseg export` on the workstation.
# Python packages the machine lacks (monai, nibabel, pydicom) travel as wheels in .whl/.
# The GPU tests of the suite (tests/seg/test_devices.py) run beside the training, output in $OUT/device.log.
# STAGE16_TEST=1: a few subjects and seconds of training on the CPU (the rehearsal of this script); STAGE16_V050:
# another bundle to start 16b from (the test's rehearsal uses models/lowerleg-unet); OUT, STAGE16_WORK: output and work folders.
set -u
OUT=${OUT:-/tmp/stage16_out}
W=${STAGE16_WORK:-/tmp/stage16}
mkdir -p "$OUT" "$W"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
if [ -d .whl ] && ! python3 -c "import monai, nibabel, pydicom" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
SUBJECTS=96 WORKERS=16 DEVICE=cuda RECIPES=training
if [ "${STAGE16_TEST:-0}" = 1 ]; then
    SUBJECTS=4 WORKERS=2 DEVICE=cpu RECIPES=$W/recipes
    mkdir -p "$RECIPES"
    for r in a b c; do
        sed -e 's/max_minutes: .*/max_minutes: 0.15/' -e 's/iterations_per_epoch: .*/iterations_per_epoch: 5/' \
            -e 's/batch_size: .*/batch_size: 4/' training/lowerleg-unet-stage16$r.yaml > "$RECIPES/lowerleg-unet-stage16$r.yaml"
    done
fi
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1
  python3 -c "import sys, torch, numpy, scipy, skimage, monai, nibabel; print(sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'skimage', skimage.__version__, 'monai', monai.__version__, 'nibabel', nibabel.__version__)"
  nproc; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

DATA=$W/Dataset516_LowerLegGPU
if [ ! -s "$DATA/splits_final.json" ]; then
    rm -rf "$DATA"
    stamp "dataset: $SUBJECTS subjects"
    python3 -m alsseg dataset --synthetic "$SUBJECTS" --seed 1600 \
        --contrasts mese_e1,t1w,random,random,t1w,dixon_water,dwi_b0,random \
        --grids-per-subject 2 --als-fraction 0.5 --val-fraction 0.05 --workers "$WORKERS" --quiet \
        --out "$DATA" > "$OUT/device.log" 2>&1 || { stamp "dataset failed"; tail -20 "$OUT/device.log"; exit 1; }
fi
stamp "dataset done: $(ls "$DATA/imagesTr" | wc -l) volumes"

mkdir -p "$W/cache"
declare -A INIT=([a]=models/lowerleg-unet [b]=${STAGE16_V050:-.carry/bundle-v050} [c]=)
start_run() {  # $1: a, b or c
    local run=$W/run_16$1
    mkdir -p "$run" && ln -sfn "$W/cache" "$run/cache"
    python3 -m alsseg train --recipe "$RECIPES/lowerleg-unet-stage16$1.yaml" --data "$DATA" --out "$run" \
        ${INIT[$1]:+--init "${INIT[$1]}"} --device "$DEVICE" --quiet > "$OUT/train_16$1.log" 2>&1 &
    PIDS+=($!)
}
PIDS=()
start_run a   # preprocesses every case into the shared cache with one process per core
while [ ! -s "$W/run_16a/log.csv" ] && kill -0 "${PIDS[0]}" 2>/dev/null; do sleep 2; done
stamp "cache ready; starting 16b and 16c"
start_run b
start_run c
if [ "${STAGE16_TEST:-0}" != 1 ]; then  # the GPU tests of the suite, beside the training
    stamp "GPU tests"
    python3 -m pytest -q -p no:cacheprovider tests/seg/test_devices.py >> "$OUT/device.log" 2>&1
    stamp "GPU tests: $(tail -1 "$OUT/device.log")"
fi
trap 'kill "${PIDS[@]}" 2>/dev/null' EXIT
for p in "${PIDS[@]}"; do wait "$p"; done
trap - EXIT
stamp "training done"
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader >> "$OUT/env.txt" 2>&1

for r in a b c; do
    run=$W/run_16$r
    tail -3 "$OUT/train_16$r.log"
    [ -s "$run/checkpoints/last.pt" ] || { stamp "16$r: no checkpoint"; continue; }
    mkdir -p "$W/pack_16$r/checkpoints"
    cp "$run/run.json" "$run/log.csv" "$W/pack_16$r/"
    cp "$run/checkpoints/best.pt" "$W/pack_16$r/checkpoints/"
    python3 -c "import sys, torch; ck = torch.load(sys.argv[1], map_location='cpu', weights_only=True); ck.pop('optimizer'); torch.save(ck, sys.argv[2])" \
        "$run/checkpoints/last.pt" "$W/pack_16$r/checkpoints/last.pt"
    tar czf "$OUT/run_16$r.tgz" -C "$W/pack_16$r" run.json log.csv checkpoints
    stamp "16$r: $(tail -1 "$run/log.csv" | cut -d, -f1,5,13)"
done
stamp "end"
