#!/usr/bin/env bash
# The comparison rows of README.md's table: the default recipe (configs/sst2-w1a8.json) at a
# shorter shared budget (train.max_steps below), one row per weight/activation setting, then TREC.
# Runs one after another (each resumes if its run directory holds a checkpoint):
#   setsid nohup bash tools/train/compare.sh > tools/train/runs/compare.out 2>&1 &
set -u
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-350}
T=tools/train/train.py
C=tools/train/configs/sst2-w1a8.json
common=(--set train.max_steps=$STEPS --set train.warmup_steps=100 --set train.threads=1 --set train.log_every=50 --set export.dir=null)
/usr/bin/python3 $T $C --name cmp-w1a8 "${common[@]}"
/usr/bin/python3 $T $C --name cmp-fp32 "${common[@]}" --set model.weight_bits=32 --set model.act_bits=32 --set model.emb_bits=32
/usr/bin/python3 $T $C --name cmp-w1a1 "${common[@]}" --set model.act_bits=1
/usr/bin/python3 $T $C --name cmp-w1a32 "${common[@]}" --set model.act_bits=32
/usr/bin/python3 $T $C --name cmp-w1a4 "${common[@]}" --set model.act_bits=4
/usr/bin/python3 $T tools/train/configs/trec.json
/usr/bin/python3 $T $C --name cmp-w1a8-lambda-only "${common[@]}" --set train.routing_weight=0
