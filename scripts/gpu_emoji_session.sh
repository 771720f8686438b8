#!/usr/bin/env bash
# One GPU call for the emoji source and the CUDA self-check (the plan in data/emoji/README.md, "Source network").
# Run from the repository root on a GPU machine whose python3 has torch, with data/emoji/cache carried along:
#
#   OUT=/some/folder scripts/gpu_emoji_session.sh          # TRAIN_SECONDS (default 400), BATCH (default 256),
#                                                           # GAMMA (R1 weight, default 0.1 as on the CPU)
#   OUT=/tmp/x DEVICE=cpu SELFCHECK_FLAGS=--quick TRAIN_SECONDS=90 BATCH=16 TICK=0.032 \
#     scripts/gpu_emoji_session.sh
#                                                           # a rehearsal of the plumbing on the CPU
#
# 1. Pretrains the emoji64 source for TRAIN_SECONDS (stopped with SIGINT; a snapshot every tick is kept, so the
#    last one survives), while the correctness sections of the self-check run beside it: from scratch, or with
#    RESUME=data/emoji/source_emoji64.pkl on from the shipped source, the CPU's last stage (the continue options of
#    data/emoji/README.md, without the G_ema ramp-up; the G_ema half-life follows the batch).
#    Beside them it trains one cell of the emoji preset, near-10shot-seed0 with FSGAN (`compare.py --train-only`,
#    CELL_KIMG kimg, default the preset's 20; within CELL_SECONDS), from CELL_SOURCE (default the shipped source
#    data/emoji/source_emoji64.pkl, the one docs/benchmark-emoji.md's CPU cells trained from) with bfloat16
#    convolutions as those cells (CELL_BF16=0: float32), for the check that a cell's numbers do not depend on
#    where it trained: both are measured on the CPU (data/emoji/README.md, "Where a cell trained"). CELL=0 skips it.
# 2. Ships the last snapshot without the report (no Inception weights on the device), and keeps the run's
#    options, statistics, sessions and last grid.
# 3. Runs the self-check's speed section alone (its own time limit, SPEED_SECONDS, default 120).
# Everything is written under STAGE (default: a new /tmp/gpu-session.XXXXXX); $OUT only ever holds source_emoji64.pkl (once
# shipped) and results.tgz (every other file of STAGE: logs, self-check JSON, ship record and grid, run files),
# rewritten every minute and at each step's end, so that a call stopped at its time limit still brings back what
# finished, and never more than the few files a device call returns. Unpack with tar -xzf results.tgz; the ship
# and the report are finished on the CPU afterwards.
set -u
: "${OUT:?set OUT to the folder for the results}"
TRAIN_SECONDS=${TRAIN_SECONDS:-400}
SPEED_SECONDS=${SPEED_SECONDS:-120}
BATCH=${BATCH:-256}
GAMMA=${GAMMA:-0.1}
TICK=${TICK:-25}
DEVICE=${DEVICE:-cuda}
SELFCHECK_FLAGS=${SELFCHECK_FLAGS:-}
RESUME=${RESUME:-}
CELL=${CELL:-1}
CELL_SOURCE=${CELL_SOURCE:-data/emoji/source_emoji64.pkl}
CELL_BF16=${CELL_BF16:-1}
CELL_KIMG=${CELL_KIMG:-}
CELL_SECONDS=${CELL_SECONDS:-$((TRAIN_SECONDS + 60))}   # its own limit: a cell cut short is refused when measured
if [ -n "$RESUME" ]; then
    # No G_ema ramp-up when continuing a trained stage (as stylegan2-ada-pytorch on resume; data/emoji/README.md)
    start=(--resume "$RESUME" --method tgan --protocol ours --start G_ema --track-w-avg true --ema-rampup 0)
else
    start=(--cfg emoji64)
fi
PRE=${PRE:-$(mktemp -d /tmp/emoji-pretrain.XXXXXX)}   # fresh folders: nothing of an earlier call comes back
STAGE=${STAGE:-$(mktemp -d /tmp/gpu-session.XXXXXX)}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT" "$STAGE/run" "$PRE"

bundle() {  # STAGE's files except pickles, checkpoints and temp files -> $OUT/results.tgz, replaced atomically
    # tar exits 1 when a log grows while it is read: the bundle is still good
    tar -C "$STAGE" --warning=no-file-changed --exclude='*.pkl' --exclude='checkpoint.pt' --exclude='.*.tmp' \
        -czf "$OUT/results.tgz.tmp" .
    [ $? -le 1 ] && mv "$OUT/results.tgz.tmp" "$OUT/results.tgz"
}
(while sleep 60; do bundle; done) > /dev/null 2>&1 &
bundler=$!
trap 'pkill -P $bundler 2>/dev/null; kill $bundler 2>/dev/null; bundle' EXIT

nvidia-smi > "$STAGE/nvidia-smi.txt" 2>&1
python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))' \
    > "$STAGE/torch.txt" 2>&1

timeout -k 60 -s INT "$TRAIN_SECONDS" python3 scripts/train.py --outdir "$PRE" \
    --target-dir data/emoji/cache/noto_train.zip "${start[@]}" --batch "$BATCH" --mirror --aug diffaug \
    --gamma "$GAMMA" --kimg 5000 --tick "$TICK" --snap 1 --device "$DEVICE" --allow-tf32 --no-progress \
    > "$STAGE/train.log" 2>&1 &
train_pid=$!
if [ "$CELL" != 0 ]; then
    # The cell's pickles stay here; its adapters come back, and the CPU measures them on this very source.
    echo "$CELL_SOURCE $(sha256sum < "$CELL_SOURCE" | cut -d' ' -f1)" > "$STAGE/cell-source.txt"
    timeout -k 60 -s INT "$CELL_SECONDS" python3 scripts/compare.py --preset emoji --preset-targets near \
        --preset-shots 10 --preset-seeds 0 --methods fsgan --source "$CELL_SOURCE" ${CELL_KIMG:+--kimg "$CELL_KIMG"} \
        $([ "$CELL_BF16" != 0 ] && echo --bf16-conv) --outdir "$STAGE/cell" --device "$DEVICE" --train-only \
        --no-progress > "$STAGE/cell.log" 2>&1 &
    cell_pid=$!
fi
python3 -m fsgan.selfcheck --device "$DEVICE" $SELFCHECK_FLAGS --sections ops,fixtures,methods,end_to_end \
    --json "$STAGE/selfcheck.json" > "$STAGE/selfcheck.log" 2>&1
echo "selfcheck exit $?" >> "$STAGE/selfcheck.log"
wait "$train_pid"
echo "train exit $? (124/130: stopped by the time limit, as planned)" >> "$STAGE/train.log"
if [ "$CELL" != 0 ]; then
    wait "$cell_pid"
    echo "cell exit $? (0: trained; 124/130: stopped by the time limit before the end)" >> "$STAGE/cell.log"
fi

run=$(ls -d "$PRE"/0*/ 2>/dev/null | tail -n 1)
run=${run%/}
snapshot=$(ls "$run"/network-snapshot-*.pkl 2>/dev/null | tail -n 1)
if [ -n "$snapshot" ]; then
    python3 scripts/ship_emoji_source.py --snapshot "$snapshot" --no-report --device "$DEVICE" \
        --data-dir "$STAGE/ship" > "$STAGE/ship.log" 2>&1
    shipped=$?
    echo "ship exit $shipped ($snapshot)" >> "$STAGE/ship.log"
    if [ "$shipped" -eq 0 ]; then
        cp "$STAGE/ship/source_emoji64.pkl" "$OUT/source_emoji64.pkl.tmp" \
            && mv "$OUT/source_emoji64.pkl.tmp" "$OUT/source_emoji64.pkl"
    fi
    cp "$run"/training_options.json "$run"/stats.jsonl "$run"/sessions.jsonl "$STAGE/run/"
    cp "$run"/log.txt "$STAGE/run/" 2>/dev/null
    cp "$(ls "$run"/fakes*.png | tail -n 1)" "$STAGE/run/"
    basename "$snapshot" > "$STAGE/run/snapshot_name.txt"
else
    echo "no snapshot in $PRE" > "$STAGE/ship.log"
fi

timeout -k 30 -s INT "$SPEED_SECONDS" python3 -m fsgan.selfcheck --device "$DEVICE" $SELFCHECK_FLAGS --sections speed \
    --json "$STAGE/selfcheck-speed.json" > "$STAGE/selfcheck-speed.log" 2>&1
echo "speed exit $?" >> "$STAGE/selfcheck-speed.log"
ls -laR "$STAGE" "$OUT"
tail -n 5 "$STAGE/train.log" "$STAGE/selfcheck.log" "$STAGE/ship.log" "$STAGE/selfcheck-speed.log" \
    $([ "$CELL" != 0 ] && echo "$STAGE/cell.log")
