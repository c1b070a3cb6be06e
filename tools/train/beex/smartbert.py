"""SmartBERT's layer-skipping gates (docs/MODEL.md, Mechanisms from the seeds: `skip_gates`) on
the reference BEExformer.

Before block i + 1 (0-based gate i, i = 0 .. L - 2; the last block is never skipped), with m the
mean over the sample's real tokens of the state entering the block:

    g = sigmoid(W1 tanh(W0 m + b0) + b1)        (tensors skip.{i}.0.*, skip.{i}.1.*)

and the block is skipped when g >= rho: the state passes unchanged and there is no exit check
after it. The pooled-MLP gate replaces the authors' token attention (the issue's allowed
simplification).

Gate modes of `SmartBERT.forward`:
- "soft":    h' = (1 - g) Block(h) + g h                         (stage 1, early steps)
- "hard_st": h' = (1 - s) Block(h) + s h, s = 1[g >= rho] forward, ds/dg = 1 backward
             (straight-through "hard weight" estimator; stage 1, later steps)
- "hard":    per-sample hard skipping (inference); a batch masks: a skipped sample keeps h.
- "none":    every block runs (gates ignored), the plain BEExformer.

`reference_path` is the golden file's reference: one sample, no padding, float32, and a skipped
block is really not computed.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import safetensors_io
from .export import export, round_weights_to_f16  # noqa: F401 (round_weights_to_f16 is re-exported for train_smartbert)
from .model import BEExformer
from .policies import POLICIES, _grid, entropies_np, exit_blocks


class SkipGate(nn.ModuleList):
    """[Linear(d, H), Linear(H, 1)]: state_dict names `0.weight`, `0.bias`, `1.weight`, `1.bias`."""

    def __init__(self, d, hidden, init_bias=-2.0):
        super().__init__([nn.Linear(d, hidden), nn.Linear(hidden, 1)])
        nn.init.normal_(self[1].weight, std=0.01)
        nn.init.constant_(self[1].bias, init_bias)

    def forward(self, m):
        """m [B, d] -> g [B]."""
        return torch.sigmoid(self[1](torch.tanh(self[0](m)))).squeeze(-1)


class SmartBERT(BEExformer):
    def __init__(self, cfg, tok_map=None, dropout=0.0, attn_dropout=0.0, skip_hidden=None, rho=None,
                 gate_init_bias=-2.0):
        super().__init__(cfg, tok_map=tok_map, dropout=dropout, attn_dropout=attn_dropout)
        sg = dict(cfg.get("skip_gates") or {})
        hidden = int(skip_hidden if skip_hidden is not None else sg.get("hidden", 64))
        rho = float(rho if rho is not None else sg.get("rho", 0.5))
        self.cfg["skip_gates"] = {"hidden": hidden, "rho": rho}
        self.rho = rho
        self.skip = nn.ModuleList(SkipGate(cfg["d_model"], hidden, gate_init_bias)
                                  for _ in range(cfg["n_layers"] - 1))

    def forward(self, ids, mask=None, n_blocks=None, gates="hard", return_aux=False):
        """Logits of every exit [L, B, C] (a skipped block's row is its exit on the unchanged
        state; policies must ignore it: see `ran`). With return_aux also a dict:
        g [L-1, B] gate values, ran [L, B] bool (block ran; hard modes), pooled [L, B, d] (pooled
        block outputs, for the contrastive term)."""
        x, mask, key_pad = self.embed_input(ids, mask)
        w = mask.to(x.dtype).unsqueeze(-1)
        count = w.sum(dim=1)
        B, L = ids.shape[0], self.cfg["n_layers"]
        out, gs, ran, pooled_all = [], [], [], []
        pooled = (x * w).sum(dim=1) / count
        for i, (block, head) in enumerate(zip(self.blocks, self.exits)):
            if n_blocks is not None and i >= n_blocks:
                break
            last = i == L - 1
            if gates == "none" or last:
                x = block(x, key_pad)
                ran.append(torch.ones(B, dtype=torch.bool))
            else:
                g = self.skip[i](pooled)
                gs.append(g)
                hard = g >= self.rho
                ran.append(~hard)
                if gates == "soft":
                    s = g
                elif gates == "hard_st":
                    s = hard.to(g.dtype) + g - g.detach()
                elif gates == "hard":
                    s = None
                else:
                    raise ValueError(f"unknown gate mode {gates!r}")
                if s is None:
                    if bool(hard.all()):
                        pass  # every sample skips: the state is unchanged
                    else:
                        x = torch.where(hard[:, None, None], x, block(x, key_pad))
                else:
                    s3 = s[:, None, None]
                    x = (1 - s3) * block(x, key_pad) + s3 * x
            pooled = (x * w).sum(dim=1) / count
            pooled_all.append(pooled)
            z = head(pooled)
            out.append(z if self.temperatures is None else z / self.temperatures[i])
        logits = torch.stack(out)
        if not return_aux:
            return logits
        aux = {"g": torch.stack(gs) if gs else torch.zeros(0, B), "ran": torch.stack(ran),
               "pooled": torch.stack(pooled_all)}
        return logits, aux


def from_beexformer(base, skip_hidden, rho=0.5, gate_init_bias=-2.0, dropout=0.0, attn_dropout=0.0, seed=0):
    """A SmartBERT holding `base`'s weights (backbone, exits, temperatures) and fresh gates that
    start out not skipping (b1 = gate_init_bias < 0)."""
    cfg = dict(base.cfg)
    torch.manual_seed(seed)
    m = SmartBERT(cfg, tok_map=base.embed.tok_map, dropout=dropout, attn_dropout=attn_dropout,
                  skip_hidden=skip_hidden, rho=rho, gate_init_bias=gate_init_bias)
    missing, unexpected = m.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("skip.") for k in missing), (missing, unexpected)
    return m


# ---------------------------------------------------------------------------------------------
# Losses

def contrastive_loss(pooled, ran=None, temperature=0.1):
    """Cross-layer contrastive term (SmartBERT's, simplified): InfoNCE between the mean-pooled
    token states of adjacent layers. For layers l and l + 1, sample b's two states are the
    positive pair and the other samples of the batch at layer l + 1 are the negatives; symmetric,
    averaged over the L - 1 layer pairs. pooled [L, B, d]."""
    L, B, _ = pooled.shape
    if B < 2:
        return pooled.new_zeros(())
    z = F.normalize(pooled, dim=-1)
    target = torch.arange(B)
    total = 0.0
    for l in range(L - 1):
        sim = z[l] @ z[l + 1].t() / temperature
        total = total + 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target))
    return total / (L - 1)


def skip_regulariser(g, target):
    """(mean g - target)^2 over gates and samples: pushes the average skip probability toward a
    target skip rate (rather than -mean g, which would drive every gate to skip)."""
    return (g.mean() - target) ** 2


# ---------------------------------------------------------------------------------------------
# Inference over a dataset (batched, padded; hard gates)

@torch.no_grad()
def predict_all_skip(model, seqs, pad_id, gates="hard", batch_size=128):
    """(logits [N, L, C] float32, ran [N, L] bool, g [N, L-1] float32) with hard gates."""
    from .data import collate
    model.eval()
    order = np.argsort([len(s) for s in seqs], kind="stable")
    N, L = len(seqs), model.cfg["n_layers"]
    logits = np.zeros((N, L, model.cfg["n_classes"]), dtype=np.float32)
    ran = np.ones((N, L), dtype=bool)
    g = np.zeros((N, L - 1), dtype=np.float32)
    for i in range(0, N, batch_size):
        idx = order[i:i + batch_size]
        ids, mask = collate([seqs[j] for j in idx], pad_id)
        lg, aux = model(ids, mask, gates=gates, return_aux=True)
        logits[idx] = lg.permute(1, 0, 2).numpy()
        ran[idx] = aux["ran"].t().numpy()
        if L > 1 and aux["g"].numel():
            g[idx] = aux["g"].t().numpy()
    return logits, ran, g


def exits_with_skips(policy, params, logits, ran):
    """Policy replay with skipping: per sample, the policy sees only the exits of the blocks that
    ran, in order (delta and patience compare consecutive *evaluated* exits; delta is 0 at the
    first evaluated exit); the last block always ran and answers if nothing exits earlier.
    Returns (exit block 1-based [N], blocks run up to and including it [N])."""
    logits = np.asarray(logits, dtype=np.float32)
    ran = np.asarray(ran, dtype=bool)
    N, L, _ = logits.shape
    exit_block = np.zeros(N, dtype=np.int64)
    blocks_used = np.zeros(N, dtype=np.int64)
    patterns = {}
    for n in range(N):
        patterns.setdefault(ran[n].tobytes(), []).append(n)
    for key, rows in patterns.items():
        rows = np.asarray(rows)
        cols = np.nonzero(ran[rows[0]])[0]
        k = exit_blocks(policy, params, logits[rows][:, cols])  # 1-based among evaluated exits
        exit_block[rows] = cols[k - 1] + 1
        blocks_used[rows] = k
    return exit_block, blocks_used


def evaluate_policy_skip(policy, params, logits, ran, labels):
    """(accuracy, mean blocks run, mean exit block, exit blocks)."""
    eb, used = exits_with_skips(policy, params, logits, ran)
    pred = np.asarray(logits)[np.arange(len(eb)), eb - 1].argmax(-1)
    return float((pred == np.asarray(labels)).mean()), float(used.mean()), float(eb.mean()), eb


def calibrate_skip(policy, logits, ran, labels, max_drop=0.003):
    """beex.policies.calibrate on the skip-aware replay: fewest mean blocks *run* with accuracy >=
    (accuracy of the gated model at full depth) - max_drop; ties to the higher accuracy.
    Returns (params, acc, mean blocks run)."""
    L, C = logits.shape[1], logits.shape[2]
    full, _, _, _ = evaluate_policy_skip("none", {}, logits, ran, labels)
    best = None
    for params in _grid(policy, L, C):
        acc, used, _, _ = evaluate_policy_skip(policy, params, logits, ran, labels)
        if acc + 1e-9 < full - max_drop:
            continue
        key = (used, -acc)
        if best is None or key < best[0]:
            best = (key, params, acc, used)
    if best is None:
        return {}, full, float(ran.sum(1).mean())
    return best[1], best[2], best[3]


# ---------------------------------------------------------------------------------------------
# Reference (golden) and export

@torch.no_grad()
def reference_path(model, ids):
    """One sample, no padding, float32, hard gates, skipped blocks not computed.
    Returns (blocks_run 1-based, gate values [L-1], logits [k, C], entropies [k])."""
    model.eval()
    x_ids = torch.tensor([ids], dtype=torch.int64)
    L = model.cfg["n_layers"]
    x = model.embed(x_ids)
    n = torch.full((1, 1), float(len(ids)))  # mean over the real tokens, as the exits pool
    blocks_run, gates, rows = [], [], []
    for i in range(L):
        if i < L - 1:
            g = float(model.skip[i](x.sum(dim=1) / n)[0])
            gates.append(g)
            if np.float32(g) >= np.float32(model.rho):
                continue
        x = model.blocks[i](x, None)
        z = model.exits[i](x.sum(dim=1) / n)
        if model.temperatures is not None:
            z = z / model.temperatures[i]
        blocks_run.append(i + 1)
        rows.append(z[0].numpy())  # float32 for a float32 model (float64 in the tests)
    logits = np.stack(rows)
    return blocks_run, gates, logits, entropies_np(logits[None])[0]


def load_smart_dir(path):
    tensors, meta = safetensors_io.load(os.path.join(path, "model.safetensors"))
    cfg = json.loads(meta["config"])
    model = SmartBERT(cfg, tok_map=tensors.get("embed.tok_map"))
    model.load_state_dict({k: v.float() if v.dtype == torch.float16 else v for k, v in tensors.items()})
    model.eval()
    return model, cfg


def golden_samples(model, tokenizer, texts, labels, policies):
    T = model.cfg["max_len"]
    out = []
    for text, label in zip(texts, labels):
        ids = tokenizer.encode(text, T)
        blocks_run, gates, logits, H = reference_path(model, ids)
        exits = {}
        for name, params in policies.items():
            k = int(exit_blocks(name, params, logits[None], H[None])[0])
            exits[name] = int(blocks_run[k - 1])
        out.append({"text": text, "ids": [int(i) for i in ids], "label": int(label),
                    "blocks_run": blocks_run, "skip_gates": [float(g) for g in gates],
                    "logits": [[float(v) for v in row] for row in logits],
                    "entropies": [float(h) for h in H], "exits": exits})
    return out


def export_smart(model, out_dir, extra_config, tokenizer, golden_texts, golden_labels, weight_dtype="F16"):
    """model.safetensors + config.json + golden.json (no model.pt, no model.bex), through
    beex.export.export with this module's golden samples (blocks_run, skip gates). With F16, call
    round_weights_to_f16 first so that every metric and the golden file describe the stored model."""
    return export(model, out_dir, extra_config, tokenizer, golden_texts, golden_labels, weight_dtype,
                  write_pt=False, samples=golden_samples)