#!/usr/bin/env bash
# One GPU call for the emoji source and the CUDA self-check (the plan in data/emoji/README.md, "Source network").
# Run from the repository root on a GPU machine whose python3 has torch, with data/emoji/cache carried along:
#
#   OUT=/some/folder scripts/gpu_emoji_session.sh          # TRAIN_SECONDS (default 400), BATCH (default 256)
#   OUT=/tmp/x DEVICE=cpu SELFCHECK_FLAGS=--quick TRAIN_SECONDS=90 BATCH=16 TICK=0.032 \
#     scripts/gpu_emoji_session.sh
#                                                           # a rehearsal of the plumbing on the CPU
#
# 1. Pretrains the emoji64 source for TRAIN_SECONDS (stopped with SIGINT; a snapshot every tick is kept, so the
#    last one survives), while the correctness sections of the self-check run beside it: from scratch, or with
#    RESUME=data/emoji/pretrain/source_emoji64.pkl on from the CPU's kept stage (the continue options of
#    data/emoji/README.md; the G_ema half-life follows the batch).
# 2. Ships the last snapshot without the report (no Inception weights on the device) into $OUT/ship, and copies
#    the run's options, statistics, log and last grid into $OUT/run.
# 3. Runs the self-check's speed section alone (its own time limit, SPEED_SECONDS, default 120).
# Everything it prints goes to $OUT/*.log; the ship and the report are finished on the CPU afterwards.
set -u
: "${OUT:?set OUT to the folder for the results}"
TRAIN_SECONDS=${TRAIN_SECONDS:-400}
SPEED_SECONDS=${SPEED_SECONDS:-120}
BATCH=${BATCH:-256}
TICK=${TICK:-25}
DEVICE=${DEVICE:-cuda}
SELFCHECK_FLAGS=${SELFCHECK_FLAGS:-}
RESUME=${RESUME:-}
if [ -n "$RESUME" ]; then
    start=(--resume "$RESUME" --method tgan --protocol ours --start G_ema --track-w-avg true --ema-rampup 0.05)
else
    start=(--cfg emoji64)
fi
PRE=${PRE:-/tmp/emoji-pretrain}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT/run" "$PRE"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))' \
    > "$OUT/torch.txt" 2>&1

timeout -s INT "$TRAIN_SECONDS" python3 scripts/train.py --outdir "$PRE" \
    --target-dir data/emoji/cache/noto_train.zip "${start[@]}" --batch "$BATCH" --mirror --aug diffaug \
    --gamma 0.1 --kimg 5000 --tick "$TICK" --snap 1 --device "$DEVICE" --allow-tf32 --no-progress \
    > "$OUT/train.log" 2>&1 &
train_pid=$!
python3 -m fsgan.selfcheck --device "$DEVICE" $SELFCHECK_FLAGS --sections ops,fixtures,methods,end_to_end \
    --json "$OUT/selfcheck.json" > "$OUT/selfcheck.log" 2>&1
echo "selfcheck exit $?" >> "$OUT/selfcheck.log"
wait "$train_pid"
echo "train exit $? (124/130: stopped by the time limit, as planned)" >> "$OUT/train.log"

run=$(ls -d "$PRE"/0*/ 2>/dev/null | tail -n 1)
run=${run%/}
snapshot=$(ls "$run"/network-snapshot-*.pkl 2>/dev/null | tail -n 1)
if [ -n "$snapshot" ]; then
    python3 scripts/ship_emoji_source.py --snapshot "$snapshot" --no-report --device "$DEVICE" \
        --data-dir "$OUT/ship" > "$OUT/ship.log" 2>&1
    echo "ship exit $? ($snapshot)" >> "$OUT/ship.log"
    cp "$run"/training_options.json "$run"/stats.jsonl "$OUT/run/"
    cp "$run"/log.txt "$OUT/run/" 2>/dev/null
    cp "$(ls "$run"/fakes*.png | tail -n 1)" "$OUT/run/"
    basename "$snapshot" > "$OUT/run/snapshot_name.txt"
else
    echo "no snapshot in $PRE" > "$OUT/ship.log"
fi

timeout -s INT "$SPEED_SECONDS" python3 -m fsgan.selfcheck --device "$DEVICE" $SELFCHECK_FLAGS --sections speed \
    --json "$OUT/selfcheck-speed.json" > "$OUT/selfcheck-speed.log" 2>&1
echo "speed exit $?" >> "$OUT/selfcheck-speed.log"
ls -la "$OUT" "$OUT/ship" "$OUT/run"
tail -n 5 "$OUT/train.log" "$OUT/selfcheck.log" "$OUT/ship.log" "$OUT/selfcheck-speed.log"
