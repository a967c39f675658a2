#!/usr/bin/env bash
# Train the model from scratch on a GPU machine lent by the `device` tool, in one call of at most
# ten minutes, and leave the export, the logs and a quick evaluation in $OUT (README: "Training on a
# lent GPU"). Synthetic lines are rendered on all but a few CPU cores while the GPU trains: the
# training run picks up each new shard at its next validation run.
#
#   bash scripts/gpu_train.sh              # there, with var/gpu-bundle carried (python -m training gpu-bundle)
#   GPU_TRAIN_TINY=1 OUT=/tmp/gpu-out PYTHON=.venv/bin/python BUNDLE=/tmp/tinybundle bash scripts/gpu_train.sh
#                                          # a dry run on this CPU: tiny model, minutes, same steps
#
# Settings (environment; defaults for the H200 machine):
#   BUNDLE=var/gpu-bundle  WORK=/tmp/inkwell-gpu  PYTHON=python3  DEVICE=cuda
#   BUDGET_S=540 (the whole script; the call's limit is 600)  RESERVE_S=120 (kept after training
#   for export, packing and evaluation)  BATCH=256  LR=1.5e-3  WORKERS=13 (render processes)
#   THREADS=3 (training's)  SHARD_LINES=2000  SYNTHETIC_LINES=1000000  REAL_PARTS=12
#   FIRST_SHARDS=6 (synthetic shards training waits for)  EVAL_EVERY=500  EVAL_LINES=512
#   HEIGHT=40 (input line height: shards are made at it, the model reads it)
#   TRAIN_ARGS (more `train` options, e.g. a model shape)  EVAL_ARGS (`evaluate` options)
#
# $OUT receives at most 7 files: run.log, data.log, train.log, metrics.jsonl, evaluate.txt and the
# exported model folder as model.tar.xz.00 (and .01 if it is over 15 MiB): cat model.tar.xz.* | tar -xJ
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
: "${PYTHON:=python3}" "${BUNDLE:=var/gpu-bundle}" "${WORK:=/tmp/inkwell-gpu}" "${DEVICE:=cuda}"
: "${BUDGET_S:=540}" "${RESERVE_S:=120}" "${WAIT_S:=180}" "${BATCH:=256}" "${LR:=1.5e-3}" "${WORKERS:=13}"
: "${THREADS:=3}" "${SHARD_LINES:=2000}" "${SYNTHETIC_LINES:=1000000}" "${REAL_PARTS:=12}"
: "${FIRST_SHARDS:=6}" "${EVAL_EVERY:=500}" "${EVAL_LINES:=512}" "${TRAIN_ARGS:=}" "${HEIGHT:=40}"
: "${EVAL_ARGS:=--forms-per-font 10 --prose-per-font 5 --real-limit 60}"
DEADLINE=$((START + BUDGET_S))
BUNDLE=$(cd "$BUNDLE" && pwd) || { echo "no bundle at $BUNDLE: run python -m training gpu-bundle"; exit 1; }
ROOT=$WORK/root
RUN_DIR=$ROOT/runs/gpu
DATA_PID=
TRAIN_PID=

say() { echo "[$(($(date +%s) - START)) s] $*"; }
left() { echo $((DEADLINE - $(date +%s))); }

stop_rendering() {
    if [ -n "$DATA_PID" ]; then kill -TERM -- "-$DATA_PID" 2>/dev/null || kill -TERM "$DATA_PID" 2>/dev/null; fi
    DATA_PID=
}

finish() {
    # Whatever happened: stop training and the renderers, bring back the metrics, list what $OUT holds.
    trap '' TERM INT # a second signal must not cut this short
    if [ -n "$TRAIN_PID" ]; then kill -TERM "$TRAIN_PID" 2>/dev/null && wait "$TRAIN_PID"; fi # timeout passes it on
    stop_rendering
    [ -f "$RUN_DIR/metrics.jsonl" ] && cp "$RUN_DIR/metrics.jsonl" "$OUT/metrics.jsonl"
    [ -f "$RUN_DIR/config.json" ] && { echo "--- train config"; cat "$RUN_DIR/config.json"; echo; }
    say "done; in $OUT:"
    ls -l "$OUT"
}
trap finish EXIT
trap 'exit 143' TERM INT # so that finish runs when the call's own limit stops this script

say "bundle $BUNDLE, work $WORK, device $DEVICE, budget ${BUDGET_S}s"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
nproc
rm -rf "$WORK" && mkdir -p "$ROOT"

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
cp -r "$BUNDLE/fonts" "$ROOT/fonts"

# Render in the background, in a session of its own so that all its processes stop together.
say "rendering: $WORKERS processes, shards of $SHARD_LINES lines"
SETSID=$(command -v setsid) || SETSID= # without it, only the main renderer is stopped at the end
$SETSID nice -n 5 "$PYTHON" -m training --root "$ROOT" data --synthetic-lines "$SYNTHETIC_LINES" \
    --workers "$WORKERS" --shard-lines "$SHARD_LINES" --real-parts "$REAL_PARTS" --height "$HEIGHT" >"$OUT/data.log" 2>&1 &
DATA_PID=$!
ready() {
    for set in val-heldout-fonts-forms val-heldout-fonts-prose val-real-writers; do
        [ -d "$ROOT/shards/$set" ] || return 1
    done
    # Finished synthetic shards (a .partial one does not match): enough that the first steps vary.
    shards=("$ROOT"/shards/synth-[0-9][0-9][0-9][0-9])
    [ -d "${shards[0]}" ] && ((${#shards[@]} >= FIRST_SHARDS))
}
until ready; do
    if ! kill -0 "$DATA_PID" 2>/dev/null; then
        say "rendering stopped before the first shards:"
        tail -20 "$OUT/data.log"
        exit 1
    fi
    if (($(date +%s) - START > WAIT_S)); then
        say "no first shards after ${WAIT_S}s"
        exit 1
    fi
    sleep 2
done
say "validation sets and ${#shards[@]} synthetic shards are ready"

# Train by the clock: the schedule gets 70% of what is left before the reserve (the rest pays for
# start-up and validation runs, which the schedule does not count); timeout is the backstop.
avail=$(($(left) - RESERVE_S))
if ((avail < 60)); then
    say "only ${avail}s left for training (WAIT_S, RESERVE_S or a slow start): nothing trained"
    exit 1
fi
hours=$("$PYTHON" -c "print(round($avail * 0.7 / 3600, 5))")
say "training ${hours} h of steps, stopped at ${avail}s at the latest"
# shellcheck disable=SC2086 # TRAIN_ARGS is a list of options
# In the background with `wait`: bash runs a trap only once the foreground command returns, and
# `wait` returns at once on a signal, so a TERM from the call's limit still brings the metrics back.
timeout --kill-after=15 "$avail" "$PYTHON" -m training --root "$ROOT" train --run gpu --device "$DEVICE" \
    --hours "$hours" --batch-size "$BATCH" --lr "$LR" --eval-every "$EVAL_EVERY" --eval-lines "$EVAL_LINES" \
    --eval-batch "$EVAL_LINES" --threads "$THREADS" --height "$HEIGHT" $TRAIN_ARGS >"$OUT/train.log" 2>&1 &
TRAIN_PID=$!
wait "$TRAIN_PID"
say "training ended ($?)"
TRAIN_PID=
stop_rendering
grep -c "shard done" "$OUT/data.log" | xargs echo "shards rendered:"

timeout 120 "$PYTHON" -m training --root "$ROOT" export --run gpu --out "$WORK/model" || exit 1
if command -v xz >/dev/null; then
    tar -C "$WORK" -cf - model | xz -T0 -6 >"$WORK/model.tar.xz"
else
    (cd "$WORK" && "$PYTHON" -m tarfile -c model.tar.xz model) # compression from the suffix
fi &&
    split -b 15M -d -a 2 "$WORK/model.tar.xz" "$OUT/model.tar.xz." &&
    say "model packed: $(du -h "$WORK/model.tar.xz" | cut -f1)"

eval_s=$(($(left) - 10))
if ((eval_s > 30)); then
    say "evaluating (at most ${eval_s}s)"
    # shellcheck disable=SC2086 # EVAL_ARGS is a list of options
    timeout --kill-after=10 "$eval_s" "$PYTHON" -m training --root "$ROOT" evaluate --model "$WORK/model" \
        $EVAL_ARGS >"$OUT/evaluate.txt" 2>&1
    say "evaluation ended ($?)"
    grep -E "loaded|^(all|held-out|real|style)" "$OUT/evaluate.txt"
else
    say "no time left to evaluate"
fi
