#!/usr/bin/env bash
# Embedding ablations at the comparison budget (see compare.sh): the accuracy cost of e = 2
# (against float embeddings) and of pruning unseen WordPieces (against the full table).
set -u
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-350}
T=tools/train/train.py
C=tools/train/configs/sst2-w1a8.json
common=(--set train.max_steps=$STEPS --set train.warmup_steps=100 --set train.threads=1 --set train.log_every=50 --set export.dir=null)
/usr/bin/python3 $T $C --name cmp-w1a8-e32 "${common[@]}" --set model.emb_bits=32
/usr/bin/python3 $T $C --name cmp-w1a8-noprune "${common[@]}" --set data.prune_vocab=false
