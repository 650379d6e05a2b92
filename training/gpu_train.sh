#!/bin/bash
# One training stage on one lent GPU machine (one H200, 16 cores), run from the repository root:
#   bash training/gpu_train.sh training/gpu_stage18.conf
# The stage file (bash) sets STAGE, SEED, SUBJECTS, DATASET (folder name), DATASET_OPTS (options of
# `alsseg dataset --synthetic`), RUNS (run letters) and INIT / INIT_MEMBER (run letter -> bundle / member to
# fine-tune; none: from scratch). Each run trains from training/lowerleg-unet-stage$STAGE<letter>.yaml.
#   1. SUBJECTS fresh phantom subjects from SEED written with 16 processes;
#   2. the runs side by side on the one GPU (their recipes set the time budget); the first preprocesses
#      every case into a cache the others share;
#   3. each run's run.json, log.csv, best.pt and last weights (optimiser state dropped) packed into
#      $OUT/run_<STAGE><letter>.tgz for `alsseg export` on the workstation (training logs stay in the work
#      folder: the device returns at most 8 files; each log's tail is printed).
# Python packages the machine lacks (monai, nibabel, pydicom) travel as wheels in .whl/.
# The GPU tests of the suite (tests/seg/test_devices.py) run beside the training, output in $OUT/device.log.
# Stopped from outside (TERM or INT, as the device's time limit does), it stops the runs and packs the checkpoints
# they last saved (once per 500 iterations), then exits 143.
# GPU_TEST=1: a few subjects and seconds of training on the CPU (the rehearsal of this script; GPU_TEST_MINUTES
# sets its runs' budget, default 0.15); OUT, GPU_WORK: output and work folders.
# History: stage 16 (v0.8.0's third member) ran as training/gpu_stage16.sh, the same steps with the stage
# fixed in the script; training/gpu_stage16.conf states it in this form.
set -u
CONF=${1:?usage: bash training/gpu_train.sh STAGE.conf}
# shellcheck source=/dev/null
source "$CONF" || exit 2
OUT=${OUT:-/tmp/gpu_out}
W=${GPU_WORK:-/tmp/gpu_work}
mkdir -p "$OUT" "$W"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
if [ -d .whl ] && ! python3 -c "import monai, nibabel, pydicom" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
WORKERS=16 DEVICE=cuda RECIPES=training
if [ "${GPU_TEST:-0}" = 1 ]; then
    SUBJECTS=4 WORKERS=2 DEVICE=cpu RECIPES=$W/recipes
    mkdir -p "$RECIPES"
    for r in $RUNS; do
        sed -e "s/max_minutes: .*/max_minutes: ${GPU_TEST_MINUTES:-0.15}/" -e 's/iterations_per_epoch: .*/iterations_per_epoch: 5/' \
            -e 's/batch_size: .*/batch_size: 4/' "training/lowerleg-unet-stage$STAGE$r.yaml" \
            > "$RECIPES/lowerleg-unet-stage$STAGE$r.yaml"
    done
fi
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1
  python3 -c "import sys, torch, numpy, scipy, skimage, monai, nibabel; print(sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'skimage', skimage.__version__, 'monai', monai.__version__, 'nibabel', nibabel.__version__)"
  nproc; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

DATA=$W/$DATASET
if [ ! -s "$DATA/splits_final.json" ]; then
    rm -rf "$DATA"
    stamp "dataset: $SUBJECTS subjects"
    # shellcheck disable=SC2086
    python3 -m alsseg dataset --synthetic "$SUBJECTS" --seed "$SEED" $DATASET_OPTS --workers "$WORKERS" --quiet \
        --out "$DATA" > "$OUT/device.log" 2>&1 || { stamp "dataset failed"; tail -20 "$OUT/device.log"; exit 1; }
fi
stamp "dataset done: $(ls "$DATA/imagesTr" | wc -l) volumes"

mkdir -p "$W/cache"
start_run() {  # $1: run letter
    local run=$W/run_$STAGE$1 init=${INIT[$1]:-} member=${INIT_MEMBER[$1]:-}
    mkdir -p "$run" && ln -sfn "$W/cache" "$run/cache"
    python3 -m alsseg train --recipe "$RECIPES/lowerleg-unet-stage$STAGE$1.yaml" --data "$DATA" --out "$run" \
        ${init:+--init "$init"} ${member:+--init-member "$member"} --device "$DEVICE" --quiet \
        > "$W/train_$STAGE$1.log" 2>&1 &
    PIDS+=($!)
}
read -r -a LETTERS <<< "$RUNS"
pack_runs() {  # each run's last checkpoint (or the one it had when stopped) into $OUT
    for r in "${LETTERS[@]}"; do
        local run=$W/run_$STAGE$r pack=$W/pack_$STAGE$r
        tail -3 "$W/train_$STAGE$r.log" 2>/dev/null
        [ -s "$run/checkpoints/last.pt" ] || { stamp "$STAGE$r: no checkpoint"; continue; }
        mkdir -p "$pack/checkpoints"
        cp "$run/run.json" "$run/log.csv" "$pack/"
        cp "$run/checkpoints/best.pt" "$pack/checkpoints/" 2>/dev/null || cp "$run/checkpoints/last.pt" "$pack/checkpoints/best.pt"
        python3 -c "import sys, torch; ck = torch.load(sys.argv[1], map_location='cpu', weights_only=True); ck.pop('optimizer', None); torch.save(ck, sys.argv[2])" \
            "$run/checkpoints/last.pt" "$pack/checkpoints/last.pt"
        tar czf "$OUT/run_$STAGE$r.tgz" -C "$pack" run.json log.csv checkpoints
        stamp "$STAGE$r: $(tail -1 "$run/log.csv" | cut -d, -f1,5,13)"
    done
}
# stopped from outside (the device's time limit sends TERM): stop the runs, pack what they have saved
# (stage 18's first attempt lost its runs' packing to the limit and needed a second call)
on_term() {
    trap - TERM INT EXIT
    stamp "stopped: packing the last saved checkpoints"
    kill "${PIDS[@]}" 2>/dev/null
    wait
    pack_runs
    exit 143
}
PIDS=()
trap on_term TERM INT
start_run "${LETTERS[0]}"   # preprocesses every case into the shared cache with one process per core
while [ ! -s "$W/run_$STAGE${LETTERS[0]}/log.csv" ] && kill -0 "${PIDS[0]}" 2>/dev/null; do sleep 2; done
stamp "cache ready; starting ${LETTERS[*]:1}"
for r in "${LETTERS[@]:1}"; do start_run "$r"; done
trap 'kill "${PIDS[@]}" 2>/dev/null' EXIT
if [ "${GPU_TEST:-0}" != 1 ]; then  # the GPU tests of the suite, beside the training
    stamp "GPU tests"
    python3 -m pytest -q -p no:cacheprovider tests/seg/test_devices.py >> "$OUT/device.log" 2>&1 &
    PIDS+=($!)  # waited on in the background, so that a TERM is handled at once
    wait $!
    stamp "GPU tests: $(tail -1 "$OUT/device.log")"
fi
for p in "${PIDS[@]}"; do wait "$p"; done
trap - EXIT TERM INT
stamp "training done"
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader >> "$OUT/env.txt" 2>&1
pack_runs
stamp "end"
