"""Export of a trained model: safetensors + .pt state_dict + config.json + golden.json, and
the size accounting (FP32 vs what a packed model file holds)."""
import json
import math
import os

import numpy as np
import torch

from . import safetensors_io
from .model import BEExformer, MODEL_KEYS
from .policies import POLICIES, entropies_np, exit_blocks


def f16_names(model):
    """The 2-D weight tables that an F16 export stores in half precision: BinLinear weights and
    the embedding tables (exit heads, LN, biases and the mechanisms' tables, e.g. skip gates, stay
    float32: docs/MODEL.md names only these tables for F16)."""
    return {n for n, p in model.named_parameters()
            if p.dim() == 2 and not n.startswith(("exits.", "skip.", "q_exit.", "learned_gate."))}


@torch.no_grad()
def round_weights_to_f16(model):
    """Round the F16-stored tables to float16 and back, in place, so that the model evaluated
    afterwards (dev metrics, thresholds, golden file) is exactly the one the file holds.

    A binarized weight only matters through sign(W) and alpha = mean|W|; a weight whose half
    rounds to +-0 would read as sign +1 (sign(-0) = +1), so it keeps its sign at the smallest
    half subnormal instead."""
    tiny = torch.tensor(2.0 ** -24)
    for name, p in model.named_parameters():
        if name in f16_names(model):
            h = p.detach().half().float()
            h = torch.where(h == 0, torch.where(p >= 0, tiny, -tiny), h)
            p.copy_(h)


def state_tensors(model, weight_dtype="F32"):
    half = f16_names(model) if weight_dtype == "F16" else set()
    return {k: (v.detach().cpu().half() if k in half else v.detach().cpu()).contiguous()
            for k, v in model.state_dict().items() if v is not None}


def size_report(model):
    """Parameter count, FP32 bytes (every parameter of the unpruned model at 32 bits) and packed
    bytes (what the model file holds: 1 bit per binarized weight, float32 alpha/bias/LN/exit
    heads, e-bit embedding rows with one float32 scale per row, the pruned rows only, and the
    vocabulary map at 4 bytes per id)."""
    cfg = model.cfg
    V, T, d, C = cfg["vocab_size"], cfg["max_len"], cfg["d_model"], cfg["n_classes"]
    e, wb = cfg["emb_bits"], cfg["weight_bits"]
    params = sum(p.numel() for p in model.parameters())
    rows = model.embed.tok.weight.shape[0]
    fp32_params = params - rows * d + V * d
    packed_bits = 0
    for name, p in model.named_parameters():
        if name.startswith("embed.tok.") or name.startswith("embed.pos."):
            continue
        is_bin_weight = wb == 1 and p.dim() == 2 and name.startswith("blocks.")
        if is_bin_weight:
            packed_bits += p.numel() + 32 * p.shape[0]  # signs + alpha per row
        else:
            packed_bits += 32 * p.numel()
    for n_rows in (rows, T):
        packed_bits += n_rows * d * e + (32 * n_rows if e != 32 else 0)
    if model.embed.tok_map is not None:
        packed_bits += 32 * V
    packed = packed_bits // 8
    return {"params": params, "fp32_params": fp32_params, "fp32_bytes": 4 * fp32_params,
            "packed_bytes": packed, "ratio": 4 * fp32_params / packed, "emb_rows": rows}


def full_config(model, extra):
    cfg = dict(model.cfg)
    cfg.update(extra)
    return cfg


CONTROLLER_PREFIXES = ("q_exit.", "learned_gate.")


def load_model_dir(path):
    """Re-import an exported model directory (safetensors + config)."""
    tensors, meta = safetensors_io.load(os.path.join(path, "model.safetensors"))
    cfg = json.loads(meta["config"])
    model = BEExformer(cfg, tok_map=tensors.get("embed.tok_map"))
    # The learned exit controllers' tensors (docs/MODEL.md, q_exit and learned_gate) are not the
    # backbone's: beex/controllers.py reads them. Any other unknown tensor still fails the load.
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith(CONTROLLER_PREFIXES)})
    model.eval()
    return model, cfg


@torch.no_grad()
def sample_outputs(model, ids):
    """Logits of every exit for one sample, float32, no padding: [L, C]."""
    model.eval()
    x = torch.tensor([ids], dtype=torch.int64)
    return model(x)[:, 0, :].float().numpy()


def golden_samples(model, tokenizer, texts, labels, policies):
    T = model.cfg["max_len"]
    out = []
    for text, label in zip(texts, labels):
        ids = tokenizer.encode(text, T)
        logits = sample_outputs(model, ids)
        H = entropies_np(logits[None])[0]
        exits = {name: int(exit_blocks(name, params, logits[None], H[None])[0])
                 for name, params in policies.items()}
        out.append({"text": text, "ids": [int(i) for i in ids], "label": int(label),
                    "logits": [[float(v) for v in row] for row in logits],
                    "entropies": [float(h) for h in H], "exits": exits})
    return out


def pick_golden(texts, labels, n):
    """A few dozen dev sentences: the first ones plus the longest ones (truncation, long rows)."""
    k = max(2, n // 8)
    first = list(range(min(n - k, len(texts))))
    longest = [i for i in sorted(range(len(texts)), key=lambda i: -len(texts[i])) if i not in first][:k]
    idx = first + longest
    return [texts[i] for i in idx], [labels[i] for i in idx]


def export(model, out_dir, extra_config, tokenizer, golden_texts, golden_labels, weight_dtype="F32", write_pt=True,
           samples=None):
    """weight_dtype "F16" stores the 2-D weight tables in half precision (call
    round_weights_to_f16 first, so the golden file matches the stored weights). samples computes
    the golden samples (default golden_samples; a mechanism's model passes its own, e.g. with
    blocks_run). Returns the config and the golden file's contents."""
    if weight_dtype not in ("F32", "F16"):
        raise ValueError(f"weight_dtype must be F32 or F16, got {weight_dtype}")
    os.makedirs(out_dir, exist_ok=True)
    cfg = full_config(model, extra_config)
    tensors = state_tensors(model, weight_dtype)
    safetensors_io.save(tensors, os.path.join(out_dir, "model.safetensors"),
                        metadata={"config": json.dumps(cfg, sort_keys=True)})
    if write_pt:
        torch.save(tensors, os.path.join(out_dir, "model.pt"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    policies = {"none": {}}
    policies.update({k: v for k, v in cfg.get("thresholds", {}).items() if k in POLICIES})
    golden = {"config": cfg, "policies": policies,
              "samples": (samples or golden_samples)(model, tokenizer, golden_texts, golden_labels, policies)}
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    return cfg, golden
