#!/usr/bin/env bash
# Train models on a GPU machine lent by the `device` tool, in one call of at most ten minutes, and
# leave each export, its logs and a quick evaluation in $OUT (README: "Training on a lent GPU").
# Synthetic lines are rendered on the CPU cores while the GPU trains: a training run picks up each
# new shard at its next validation run. Several runs (RUNS) train side by side on the one GPU, each
# with its own shards, options and input height: an arm of a comparison each. They start together
# once each has its first shards, on one schedule; a run that fails leaves the others to finish.
#
#   bash scripts/gpu_train.sh              # there, with var/gpu-bundle.tar.gz carried (python -m training gpu-bundle)
#   RUNS="h40 h64" HEIGHT_h40=40 TRAIN_ARGS="--init-from worker/models/inkwell-handwriting-small --lr 3e-4" bash scripts/gpu_train.sh
#   GPU_TRAIN_TINY=1 OUT=/tmp/gpu-out PYTHON=.venv/bin/python BUNDLE=/tmp/tinybundle bash scripts/gpu_train.sh
#                                          # a dry run on this CPU: tiny model, minutes, same steps
#
# Settings (environment; defaults for the H200 machine):
#   BUNDLE=var/gpu-bundle.tar.gz (or the folder it packs)  WORK=/tmp/inkwell-gpu  PYTHON=python3  DEVICE=cuda
#   RUNS=gpu (names of the runs trained side by side)
#   BUDGET_S=540 (the whole script; the call's limit is 600)  RESERVE_S=120 (kept after training
#   for export, packing and evaluation)  BATCH=256  LR=1.5e-3  WORKERS=13 (render processes, shared
#   out among the runs)  THREADS=3 (each run's)  SHARD_LINES=2000  SYNTHETIC_LINES=1000000
#   REAL_PARTS=12  FIRST_SHARD=0 (seeds of synthetic shards: continuing a model, start above those
#   it saw: runs 1-8 of the bundled model used shards below 100, run 9 100-199 and 300-399, a CPU
#   continuation of it 400-419)
#   FIRST_SHARDS=6 (synthetic shards a run waits for)  EVAL_EVERY=500  EVAL_LINES=512
#   HEIGHT=64 (input line height: shards are made at it, the model reads it; the bundled model's)
#   TRAIN_ARGS (more `train` options for every run, e.g. --init-from or a model shape; a later --lr wins)
#   DATA_ARGS (more `data` options for every run, e.g. --style-weight cursive=2; not the shard
#   options the script sets itself: --first-shard, --shard-lines, --height, --workers)
#   EVAL_ARGS (`evaluate` options)  STEP_SHARE=0.8 (of the time left to train that the schedule gets:
#   on the H200, start-up and validation runs took under 10%; the schedule of a run stopped by
#   its timeout has not annealed)
#   Per run NAME: HEIGHT_NAME, TRAIN_ARGS_NAME, DATA_ARGS_NAME (after TRAIN_ARGS and DATA_ARGS)
#
# $OUT receives run.log and, per run, NAME/data.log, NAME/train.log (its validation records are
# its "eval {...}" lines) and the exported model folder as NAME/model.tar.xz.00 (and .01 if it is
# over 16 MB): cat NAME/model.tar.xz.* | tar -xJ. The call brings back 8 files at most: 2 runs.
set -uo pipefail

START=$(date +%s)
cd "$(dirname "$0")/.." || exit 1
REPO=$PWD
: "${OUT:=$REPO/var/gpu-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1

if [ -n "${GPU_TRAIN_TINY:-}" ]; then
    : "${DEVICE:=cpu}" "${BATCH:=8}" "${WORKERS:=2}" "${THREADS:=1}" "${SHARD_LINES:=100}" "${SYNTHETIC_LINES:=400}"
    : "${FIRST_SHARDS:=1}" "${REAL_PARTS:=2}" "${EVAL_EVERY:=20}" "${EVAL_LINES:=16}" "${BUDGET_S:=480}"
    : "${RESERVE_S:=150}" "${WAIT_S:=300}" "${EVAL_ARGS:=--forms-per-font 1 --prose-per-font 0 --real-limit 3}"
    : "${TRAIN_ARGS:=--encoder-layers 1 --decoder-layers 1 --hidden 64 --no-bf16}"
fi
: "${PYTHON:=python3}" "${BUNDLE:=var/gpu-bundle.tar.gz}" "${WORK:=/tmp/inkwell-gpu}" "${DEVICE:=cuda}"
: "${BUDGET_S:=540}" "${RESERVE_S:=120}" "${WAIT_S:=180}" "${BATCH:=256}" "${LR:=1.5e-3}" "${WORKERS:=13}"
: "${THREADS:=3}" "${SHARD_LINES:=2000}" "${SYNTHETIC_LINES:=1000000}" "${REAL_PARTS:=12}"
: "${RUNS:=gpu}" "${FIRST_SHARD:=0}" "${FIRST_SHARDS:=6}" "${EVAL_EVERY:=500}" "${EVAL_LINES:=512}" "${TRAIN_ARGS:=}" "${DATA_ARGS:=}" "${HEIGHT:=64}"
: "${EVAL_ARGS:=--forms-per-font 10 --prose-per-font 5 --real-limit 60}" "${STEP_SHARE:=0.8}"
DEADLINE=$((START + BUDGET_S))
if [ -f "$BUNDLE" ]; then # an archive of the folder: one file travels in far fewer blocks than 6,600
    BUNDLE_ARCHIVE=$(cd "$(dirname "$BUNDLE")" && pwd)/$(basename "$BUNDLE")
else
    BUNDLE_ARCHIVE=
    BUNDLE=$(cd "$BUNDLE" && pwd) || { echo "no bundle at $BUNDLE: run python -m training gpu-bundle"; exit 1; }
fi
read -ra RUN_NAMES <<<"$RUNS"
((${#RUN_NAMES[@]})) || { echo "RUNS names no run"; exit 1; }
declare -A SEEN=()
for run in "${RUN_NAMES[@]}"; do
    [[ $run =~ ^[A-Za-z0-9_]+$ ]] || { echo "run name $run: letters, digits and _ only"; exit 1; }
    [ -z "${SEEN[$run]:-}" ] || { echo "run name $run is given twice"; exit 1; }
    SEEN[$run]=1
done
((1 + 3 * ${#RUN_NAMES[@]} > 8)) && echo "warning: ${#RUN_NAMES[@]} runs leave more than the 8 files a call brings back"
RENDER_WORKERS=$((WORKERS / ${#RUN_NAMES[@]} > 0 ? WORKERS / ${#RUN_NAMES[@]} : 1))
declare -A DATA_PID=() TRAIN_PID=()
PACKING=()

say() { echo "[$(($(date +%s) - START)) s] $*"; }
left() { echo $((DEADLINE - $(date +%s))); }
root_of() { echo "$WORK/$1/root"; }
height_of() { local var="HEIGHT_$1"; echo "${!var:-$HEIGHT}"; }
args_of() { local var="TRAIN_ARGS_$1"; echo "$TRAIN_ARGS ${!var:-}"; }
data_args_of() { local var="DATA_ARGS_$1"; echo "$DATA_ARGS ${!var:-}"; }

stop_rendering() { # for the runs named, or for all
    local run runs=("$@")
    ((${#runs[@]})) || runs=("${!DATA_PID[@]}")
    for run in "${runs[@]}"; do
        [ -n "${DATA_PID[$run]:-}" ] || continue
        kill -TERM -- "-${DATA_PID[$run]}" 2>/dev/null || kill -TERM "${DATA_PID[$run]}" 2>/dev/null
        unset "DATA_PID[$run]"
    done
}

finish() {
    # Whatever happened: stop training and the renderers, show each run's settings, list what $OUT holds.
    trap '' TERM INT # a second signal must not cut this short
    local run config
    for run in "${!TRAIN_PID[@]}"; do kill -TERM "${TRAIN_PID[$run]}" 2>/dev/null; done # timeout passes it on
    stop_rendering
    # By PID: a bare `wait` would also wait for the `tee` that logs this script, which never ends.
    for run in "${!TRAIN_PID[@]}"; do wait "${TRAIN_PID[$run]}"; done
    for run in "${RUN_NAMES[@]}"; do
        config=$(root_of "$run")/runs/$run/config.json
        [ -f "$config" ] && { echo "--- $run: train config"; cat "$config"; echo; }
        grep -c "shard done" "$OUT/$run/data.log" 2>/dev/null | xargs echo "$run: shards rendered:"
    done
    say "done; in $OUT:"
    ls -lR "$OUT"
}
trap finish EXIT
trap 'exit 143' TERM INT # so that finish runs when the call's own limit stops this script

say "bundle $BUNDLE, work $WORK, device $DEVICE, budget ${BUDGET_S}s, runs: ${RUN_NAMES[*]}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
nproc
rm -rf "$WORK" && mkdir -p "$WORK"
if [ -n "$BUNDLE_ARCHIVE" ]; then
    BUNDLE=$WORK/bundle
    mkdir -p "$BUNDLE" && tar -C "$BUNDLE" --strip-components=1 -xzf "$BUNDLE_ARCHIVE" || exit 1
    say "bundle unpacked from $BUNDLE_ARCHIVE"
fi

# The packages training imports that this Python lacks, from the bundle's wheels (no index here).
SITE=$WORK/site
for wheel in "$BUNDLE"/wheels/*.whl; do
    [ -e "$wheel" ] || continue
    name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]' '[:lower:]')
    if "$PYTHON" -c "import $name" 2>/dev/null; then
        say "have $name"
    else
        say "installing $(basename "$wheel")"
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$wheel" ||
            "$PYTHON" -m zipfile -e "$wheel" "$SITE" # a wheel is a zip of site-packages
    fi
done
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
export INKWELL_REAL_LINES_DIR=$BUNDLE/real INKWELL_ENGLISH_TEXT_DIR=$BUNDLE/english_text
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$PYTHON" - <<'EOF' || exit 1
import brotli, cv2, faker, fontTools, rapidfuzz, tokenizers, torch, transformers
from PIL import features

assert features.check("webp"), "this Pillow reads no WebP: the bundle's real lines are WebP"
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__)
EOF

# Each run renders its own shards in the background, in a session of its own so that all its
# processes stop together.
SETSID=$(command -v setsid) || SETSID= # without it, only the main renderer is stopped at the end
for run in "${RUN_NAMES[@]}"; do
    root=$(root_of "$run")
    mkdir -p "$root" "$OUT/$run"
    cp -r "$BUNDLE/fonts" "$root/fonts"
    say "$run: rendering at $(height_of "$run") px on $RENDER_WORKERS processes, shards of $SHARD_LINES lines"
    # shellcheck disable=SC2046 # the data options are a list of words
    $SETSID nice -n 5 "$PYTHON" -m training --root "$root" data --synthetic-lines "$SYNTHETIC_LINES" \
        --workers "$RENDER_WORKERS" --shard-lines "$SHARD_LINES" --real-parts "$REAL_PARTS" \
        --first-shard "$FIRST_SHARD" --height "$(height_of "$run")" $(data_args_of "$run") >"$OUT/$run/data.log" 2>&1 &
    DATA_PID[$run]=$!
done

ready() {
    local root set
    root=$(root_of "$1")
    for set in val-heldout-fonts-forms val-heldout-fonts-prose val-real-writers; do
        [ -d "$root/shards/$set" ] || return 1
    done
    # Enough finished synthetic shards that the first steps vary.
    (($(synthetic_shards "$1") >= FIRST_SHARDS))
}

synthetic_shards() { # how many a run has finished (a .partial one does not match)
    local shards=("$(root_of "$1")"/shards/synth-[0-9]*[0-9])
    if [ -d "${shards[0]}" ]; then echo "${#shards[@]}"; else echo 0; fi
}

start_training() {
    local run=$1 hours=$2 avail=$3
    say "$run: validation sets and $(synthetic_shards "$run") synthetic shards ready; training ${hours} h of steps, stopped at ${avail}s at the latest"
    # In the background, waited for below: bash runs a trap only once the foreground command
    # returns, and `wait` returns at once on a signal, so a TERM from the call's limit still ends well.
    # shellcheck disable=SC2046 # the options are a list
    timeout --kill-after=15 "$avail" "$PYTHON" -m training --root "$(root_of "$run")" train --run "$run" \
        --device "$DEVICE" --hours "$hours" --batch-size "$BATCH" --lr "$LR" --eval-every "$EVAL_EVERY" \
        --eval-lines "$EVAL_LINES" --eval-batch "$EVAL_LINES" --threads "$THREADS" --height "$(height_of "$run")" \
        $(args_of "$run") >"$OUT/$run/train.log" 2>&1 &
    TRAIN_PID[$run]=$!
}

# Wait until every run has its first shards or has failed; a failed run does not stop the others.
declare -A FAILED=()
while :; do
    pending=0
    for run in "${RUN_NAMES[@]}"; do
        [ -n "${FAILED[$run]:-}" ] && continue
        ready "$run" && continue
        if ! kill -0 "${DATA_PID[$run]}" 2>/dev/null; then
            say "$run: rendering stopped before the first shards:"
            tail -20 "$OUT/$run/data.log"
            FAILED[$run]=1
        elif (($(date +%s) - START > WAIT_S)); then
            say "$run: no first shards after ${WAIT_S}s"
            FAILED[$run]=1
            stop_rendering "$run"
        else
            pending=1
        fi
    done
    ((pending)) || break
    sleep 2
done
LIVE=()
for run in "${RUN_NAMES[@]}"; do [ -z "${FAILED[$run]:-}" ] && LIVE+=("$run"); done
((${#LIVE[@]})) || { say "no run has its first shards: nothing trained"; exit 1; }

# All runs start together, on one schedule: equal budgets. Train by the clock: the schedule gets
# STEP_SHARE of what is left before the reserve (the rest pays for start-up and validation runs,
# which the schedule does not count); timeout is the backstop.
avail=$(($(left) - RESERVE_S))
if ((avail < 60)); then
    say "only ${avail}s left for training (WAIT_S, RESERVE_S or a slow start): nothing trained"
    exit 1
fi
hours=$("$PYTHON" -c "print(round($avail * $STEP_SHARE / 3600, 5))")
for run in "${LIVE[@]}"; do start_training "$run" "$hours" "$avail"; done

TRAINED=()
for run in "${LIVE[@]}"; do
    wait "${TRAIN_PID[$run]}"
    status=$?
    unset "TRAIN_PID[$run]"
    say "$run: training ended ($status)"
    [ -f "$(root_of "$run")/runs/$run/best.pt" ] && TRAINED+=("$run")
done
stop_rendering

for index in "${!TRAINED[@]}"; do
    run=${TRAINED[$index]}
    export_s=$((($(left) - 20) / (${#TRAINED[@]} - index)))
    ((export_s < 30)) && export_s=30
    if ! timeout "$export_s" "$PYTHON" -m training --root "$(root_of "$run")" export --run "$run" --out "$WORK/$run/model"; then
        say "$run: export failed"
        continue
    fi
    ( # packed in the background while the exports are evaluated; into $OUT under a partial name,
        # renamed only when whole, so that a call stopped meanwhile brings back no cut archive
        if command -v xz >/dev/null; then
            tar -C "$WORK/$run" -cf - model | timeout 120 xz -T0 -6 >"$WORK/$run/model.tar.xz"
        else
            (cd "$WORK/$run" && timeout 120 "$PYTHON" -m tarfile -c model.tar.xz model) # compression from the suffix
        fi &&
            split -b 16000000 -d -a 2 "$WORK/$run/model.tar.xz" "$OUT/$run/partial.model.tar.xz." &&
            for piece in "$OUT/$run"/partial.model.tar.xz.*; do mv "$piece" "${piece/partial./}"; done &&
            say "$run: model packed: $(du -h "$WORK/$run/model.tar.xz" | cut -f1), sha256 $(sha256sum "$WORK/$run/model.tar.xz" | cut -c1-16)"
    ) &
    PACKING+=($!)
done

# Each export is evaluated on an equal share of what time is left.
for index in "${!TRAINED[@]}"; do
    run=${TRAINED[$index]}
    [ -d "$WORK/$run/model" ] || continue
    eval_s=$((($(left) - 15) / (${#TRAINED[@]} - index)))
    if ((eval_s > 30)); then
        say "$run: evaluating (at most ${eval_s}s)"
        # shellcheck disable=SC2086 # EVAL_ARGS is a list of options
        timeout --kill-after=10 "$eval_s" "$PYTHON" -m training --root "$(root_of "$run")" evaluate \
            --model "$WORK/$run/model" $EVAL_ARGS 2>&1 | sed -u "s/^/$run: /"
        say "$run: evaluation ended (${PIPESTATUS[0]})"
    else
        say "$run: no time left to evaluate"
    fi
done
for pid in "${PACKING[@]}"; do wait "$pid"; done
PACKED=()
for run in "${RUN_NAMES[@]}"; do [ -f "$OUT/$run/model.tar.xz.00" ] && PACKED+=("$run"); done
files=$(find "$OUT" -type f | wc -l)
((files > 8)) && say "warning: $files files in $OUT, and the call brings back 8 at most"
if ((${#PACKED[@]} < ${#RUN_NAMES[@]})); then
    say "exported and packed: ${PACKED[*]:-none} of ${RUN_NAMES[*]}"
    exit 1
fi
