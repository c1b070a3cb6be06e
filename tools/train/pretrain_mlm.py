#!/usr/bin/python3
"""Self-pretraining: masked-token prediction on the task's own training texts (labels unused), then fine-tuning
with train.init_from. Krishna et al. 2022 ("Downstream datasets make surprisingly good pretraining corpora") found
that pretraining on the downstream training set alone recovers much of what pretraining on a large corpus gives a
model trained from scratch; here it is issue 12's question whether it makes the deeper blocks learn more than block 1.

    /usr/bin/python3 tools/train/pretrain_mlm.py tools/train/configs/sst2-default.json --name sst2-mlm --steps 1500
    /usr/bin/python3 tools/train/train.py tools/train/configs/sst2-default.json --name sst2-w1a1-mlm \\
        --set train.init_from='"tools/train/runs/sst2-mlm/export"'

The model is the config's (same architecture, quantization and pruned vocabulary, so init_from accepts it); 15 % of
the tokens other than [CLS]/[SEP] are chosen per sequence, 80 % of them replaced by [UNK] (the pruned vocabulary has
no [MASK] row; word dropout already trains [UNK] as "a word is missing"), 10 % by a random training token, 10 % kept,
and a throwaway head (LayerNorm, then a float linear map to the pruned vocabulary's rows) predicts the original row
from the last block's output. No label is read; the loss on the dev texts is logged to watch it, never selected on.
Writes runs/<name>/export/model.safetensors (the backbone and untrained exits, no head) with the config in its
metadata, the form init_from reads.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from beex import data as D  # noqa: E402
from beex import safetensors_io  # noqa: E402
from beex.train import TRAIN_DIR, Logger, build_model, load_config, load_splits, lr_at, set_seed, set_threads  # noqa: E402


def mask_batch(ids, mask, rows, unk_id, vocab_ids, rng, rate=0.15):
    """(inputs, targets): targets hold the pruned row of each chosen token and −100 elsewhere."""
    special = (ids == ids[:, :1]) | ~mask  # [CLS] is every row's first id; padding
    last = mask.sum(1) - 1
    special[torch.arange(ids.shape[0]), last] = True  # [SEP]
    chosen = (torch.rand(ids.shape, generator=rng) < rate) & ~special
    targets = torch.where(chosen, rows[ids], torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=rng)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = unk_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = vocab_ids[torch.randint(len(vocab_ids), (int(swap.sum()),), generator=rng)]
    return inputs, targets


def pretrain(cfg, out_dir, steps, lr, log, eval_every=100):
    """Self-pretrains cfg's model for `steps` steps and writes out_dir/model.safetensors; returns [(step, dev loss)]
    from step 0 on (the masked-token cross-entropy on the dev texts, the same masks at every evaluation)."""
    ct = cfg["train"]
    set_threads(ct["threads"])
    set_seed(ct["seed"])
    data = load_splits(cfg, log)
    model, _, _, _ = build_model(cfg, data, log)
    tok = data.tok
    rows = model.embed.tok_map if model.embed.tok_map is not None else torch.arange(len(tok))
    n_rows = int(rows.max()) + 1
    seen = torch.as_tensor(sorted({i for s in data.tr_ids for i in s} - {tok.cls_id, tok.sep_id, tok.pad_id}), dtype=torch.int64)
    d = cfg["model"]["d_model"]
    head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, n_rows))
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=ct["weight_decay"])
    sched = dict(ct, lr=lr)
    rng = torch.Generator().manual_seed(ct["seed"])
    np_rng = np.random.default_rng(ct["seed"])
    lengths = [len(s) for s in data.tr_ids]

    def loss_of(seqs, generator):
        ids, mask = D.collate(seqs, tok.pad_id)
        inputs, targets = mask_batch(ids, mask, rows, tok.unk_id, seen, generator)
        x, mask, key_pad = model.embed_input(inputs, mask)
        for block in model.blocks:
            x = block(x, key_pad)
        picked = targets != -100
        return F.cross_entropy(head(x[picked]), targets[picked]), int(picked.sum())

    def dev_loss():
        model.eval()
        head.eval()
        dev_rng = torch.Generator().manual_seed(12345)  # the same dev masks at every evaluation
        with torch.no_grad():
            parts = [loss_of(data.dv_ids[i:i + 128], dev_rng) for i in range(0, len(data.dv_ids), 128)]
        model.train()
        head.train()
        return sum(l.item() * n for l, n in parts) / max(1, sum(n for _, n in parts))

    log(f"self-pretraining: {steps} steps x {ct['batch_size']}, lr {lr}, {len(data.tr_ids)} training texts, "
        f"{n_rows} vocabulary rows (ln V = {math.log(n_rows):.2f})")
    curve = [(0, dev_loss())]
    step, start = 0, time.time()
    model.train()
    head.train()
    while step < steps:
        for idx in D.bucketed_batches(lengths, ct["batch_size"], np_rng):
            if step >= steps:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, sched)
            loss, _ = loss_of([data.tr_ids[j] for j in idx], rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if ct["clip"]:
                torch.nn.utils.clip_grad_norm_(params, ct["clip"])
            opt.step()
            step += 1
            if step % eval_every == 0 or step == steps:
                curve.append((step, dev_loss()))
                log(f"step {step}/{steps} train loss {loss.item():.3f} dev loss {curve[-1][1]:.3f} {time.time() - start:.0f} s")
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v for k, v in model.state_dict().items() if v is not None}
    safetensors_io.save(tensors, os.path.join(out_dir, "model.safetensors"), {"config": json.dumps(model.cfg)})
    log(f"wrote {os.path.join(out_dir, 'model.safetensors')}")
    return curve


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--name", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON")
    args = ap.parse_args()
    cfg = load_config(args.config, args.set)
    cfg["train"]["threads"] = args.threads
    run_dir = os.path.join(TRAIN_DIR, "runs", args.name)
    os.makedirs(run_dir, exist_ok=True)
    pretrain(cfg, os.path.join(run_dir, "export"), args.steps, args.lr, Logger(os.path.join(run_dir, "log.txt")))


if __name__ == "__main__":
    main()
