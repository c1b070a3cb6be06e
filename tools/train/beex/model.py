"""The reference BEExformer of docs/MODEL.md: e-bit embeddings, post-norm blocks of BinLinear
attention + SLFN, a float exit head after every block.

Parameter and buffer names are exactly the contract's tensor names, so `state_dict()` is what
the exporter writes.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .lexical import LexicalHead
from .quant import ApproxSignFn, quantize, quantize_parts

MODEL_KEYS = ("vocab_size", "max_len", "d_model", "n_heads", "n_layers", "d_ff", "n_classes",
              "weight_bits", "act_bits", "emb_bits", "ln_eps")
# Optional model keys: written to the config only when set (absent = the default, today's contract).
# slfn_gate_center: G2 quantizes sigma(G1 h) - 1/2 instead of sigma(G1 h) (docs/MODEL.md, SLFN).
# exit_temperatures: one T_i per exit, fitted on dev after training; exit i returns z_i / T_i.
# lexical: {"bits": b}, the n-gram head added to every exit's logits (beex/lexical.py; fitted after training).
OPTIONAL_MODEL_KEYS = {"slfn_gate_center": False, "exit_temperatures": None, "lexical": None}


class BinLinear(nn.Module):
    """y = alpha * (sign(W) . Q_a(x)) + b with alpha_o = mean_i |W_oi| (weight_bits = 1),
    or y = W x + b (weight_bits = 32: the FP32 twin, no quantization at all).

    `forward` takes the already-quantized input, because several layers share one quantization
    (Q, K and V; G1 and F1); call `quantize_input` once and pass the result to each.
    """

    def __init__(self, d_in, d_out, weight_bits, act_bits):
        super().__init__()
        if weight_bits not in (1, 32):
            raise ValueError(f"weight_bits must be 1 or 32, got {weight_bits}")
        self.weight_bits = weight_bits
        self.act_bits = act_bits if weight_bits == 1 else 32
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(d_out))
        bound = 1.0 / math.sqrt(d_in)
        nn.init.uniform_(self.weight, -bound, bound)

    def quantize_input(self, x):
        """(codes, scale) of Q_a(x) per token; (x, None) when activations stay float."""
        return quantize_parts(x, self.act_bits)

    def forward(self, xq):
        codes, scale = xq
        if self.weight_bits == 32:
            return F.linear(codes, self.weight, self.bias)
        alpha = self.weight.abs().mean(dim=1)
        signs = ApproxSignFn.apply(self.weight)
        # B . codes is an exact integer (|B.q| <= 127 * K < 2^24) for quantized activations;
        # the scales multiply afterwards, as in the engine: y = alpha * s * (B . q) + b.
        dot = F.linear(codes, signs)
        return dot * (alpha if scale is None else scale * alpha) + self.bias


class Attention(nn.Module):
    def __init__(self, cfg, attn_dropout=0.0):
        super().__init__()
        d, wb, ab = cfg["d_model"], cfg["weight_bits"], cfg["act_bits"]
        self.h = cfg["n_heads"]
        if d % self.h:
            raise ValueError("d_model must be a multiple of n_heads")
        self.q = BinLinear(d, d, wb, ab)
        self.k = BinLinear(d, d, wb, ab)
        self.v = BinLinear(d, d, wb, ab)
        self.o = BinLinear(d, d, wb, ab)
        self.attn_dropout = nn.Dropout(attn_dropout)

    def forward(self, x, key_pad):
        # x: [B, T, d]; key_pad: [B, T] True where the position is padding.
        b, t, d = x.shape
        dh = d // self.h
        xq = self.q.quantize_input(x)  # Q, K and V share one quantization of x
        q = self.q(xq).view(b, t, self.h, dh).transpose(1, 2)
        k = self.k(xq).view(b, t, self.h, dh).transpose(1, 2)
        v = self.v(xq).view(b, t, self.h, dh).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)
        if key_pad is not None:
            scores = scores.masked_fill(key_pad[:, None, None, :], float("-inf"))
        probs = self.attn_dropout(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, d)
        return self.o(self.o.quantize_input(ctx))


class SLFN(nn.Module):
    """Selective-Learn Forget Network: G2(sigmoid(G1 h)) * F2(tanh(F1 h))."""

    def __init__(self, cfg):
        super().__init__()
        d, f, wb, ab = cfg["d_model"], cfg["d_ff"], cfg["weight_bits"], cfg["act_bits"]
        self.g1 = BinLinear(d, f, wb, ab)
        self.f1 = BinLinear(d, f, wb, ab)
        self.g2 = BinLinear(f, d, wb, ab)
        self.f2 = BinLinear(f, d, wb, ab)
        # sigma(G1 h) > 0, so at a = 1 its quantization is beta * (+1, ..., +1) and G2 only adds
        # its row sums; centering the gate on 0 makes G2's 1-bit input sign(G1 h).
        self.gate_center = bool(cfg.get("slfn_gate_center", False))

    def forward(self, h):
        hq = self.g1.quantize_input(h)  # G1 and F1 share one quantization of h
        g = torch.sigmoid(self.g1(hq))
        if self.gate_center:
            g = g - 0.5
        f = torch.tanh(self.f1(hq))
        return self.g2(self.g2.quantize_input(g)) * self.f2(self.f2.quantize_input(f))


class Block(nn.Module):
    def __init__(self, cfg, dropout=0.0, attn_dropout=0.0):
        super().__init__()
        d, eps = cfg["d_model"], cfg["ln_eps"]
        self.attn = Attention(cfg, attn_dropout)
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.slfn = SLFN(cfg)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, key_pad):
        h = self.ln1(x + self.drop(self.attn(x, key_pad)))
        return self.ln2(h + self.drop(self.slfn(h)))


class Embedding(nn.Module):
    """LN_emb(Q_e(E_tok[tok_map[id]]) + Q_e(E_pos[t])), Q_e per row."""

    def __init__(self, cfg, tok_map=None):
        super().__init__()
        d, v, t = cfg["d_model"], cfg["vocab_size"], cfg["max_len"]
        self.bits = cfg["emb_bits"]
        if tok_map is None:
            rows = v
            self.register_buffer("tok_map", None)
        else:
            tok_map = torch.as_tensor(tok_map, dtype=torch.int64)
            if tok_map.shape != (v,):
                raise ValueError(f"tok_map must have shape [{v}], got {list(tok_map.shape)}")
            rows = int(tok_map.max()) + 1
            self.register_buffer("tok_map", tok_map)
        self.tok = nn.Embedding(rows, d)
        self.pos = nn.Embedding(t, d)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.ln = nn.LayerNorm(d, eps=cfg["ln_eps"])

    def forward(self, ids):
        rows = ids if self.tok_map is None else self.tok_map[ids]
        # Per-row quantization commutes with the row lookup, so quantize only the rows used.
        tok = quantize(self.tok.weight[rows], self.bits)
        pos = quantize(self.pos.weight[: ids.shape[1]], self.bits)
        return self.ln(tok + pos)


def entropy(logits):
    """H = -sum p ln p over the last dim, terms with p = 0 counting 0."""
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(dim=-1)


class BEExformer(nn.Module):
    def __init__(self, cfg, tok_map=None, dropout=0.0, attn_dropout=0.0):
        super().__init__()
        missing = [k for k in MODEL_KEYS if k not in cfg]
        if missing:
            raise ValueError(f"model config lacks {', '.join(missing)}")
        self.cfg = {k: cfg[k] for k in MODEL_KEYS}
        for k, default in OPTIONAL_MODEL_KEYS.items():
            if cfg.get(k, default) != default:
                self.cfg[k] = cfg[k]
        for key in ("act_bits", "emb_bits"):
            if cfg[key] not in (1, 2, 4, 8, 32):
                raise ValueError(f"{key} must be 1, 2, 4, 8 or 32, got {cfg[key]}")
        if cfg["weight_bits"] == 32 and cfg["act_bits"] != 32:
            raise ValueError("the FP32 twin (weight_bits 32) has act_bits 32")
        self.set_temperatures(cfg.get("exit_temperatures"))
        self.embed = Embedding(cfg, tok_map)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(cfg, dropout, attn_dropout) for _ in range(cfg["n_layers"]))
        self.exits = nn.ModuleList(nn.Linear(cfg["d_model"], cfg["n_classes"])
                                   for _ in range(cfg["n_layers"]))
        lex = cfg.get("lexical")
        self.lexical = LexicalHead(int(lex["bits"]), cfg["vocab_size"], cfg["n_classes"]) if lex else None
        # Stochastic depth (Huang et al. 2016), training only: block i (0-based) is skipped for a
        # sample with probability layer_drop * (i + 1) / L, its output then being its input. The
        # exit after a skipped block reads the earlier representation, so every exit learns from
        # inputs of several depths. Inference runs every block: nothing enters the contract.
        self.layer_drop = 0.0

    def set_temperatures(self, temperatures):
        """One temperature per exit (None = none): exit i returns (E_i pooled + c_i) / T_i, the
        division in float32 as in the engine. Recorded in cfg (the exported config's key)."""
        if temperatures is None:
            self.cfg.pop("exit_temperatures", None)
            self.temperatures = None
            return
        temperatures = [float(t) for t in temperatures]
        if len(temperatures) != self.cfg["n_layers"] or not all(0 < t < float("inf") for t in temperatures):
            raise ValueError(f"exit_temperatures must be {self.cfg['n_layers']} positive numbers")
        self.cfg["exit_temperatures"] = temperatures
        self.temperatures = torch.tensor(temperatures, dtype=torch.float32)

    def embed_input(self, ids, mask=None):
        """The forward passes' common start: the length check, the mask (None = no padding), the
        attention's key padding (None when nothing is padded) and the embedded input x [B, T, d]."""
        if ids.shape[1] > self.cfg["max_len"]:
            raise ValueError(f"sequence of {ids.shape[1]} tokens exceeds max_len {self.cfg['max_len']}")
        if mask is None:
            mask = torch.ones_like(ids, dtype=torch.bool)
        key_pad = None if bool(mask.all()) else ~mask
        return self.emb_drop(self.embed(ids)), mask, key_pad

    def forward(self, ids, mask=None, n_blocks=None):
        """Logits of every exit, [L, B, C]. ids: [B, T] int64; mask: [B, T] bool, True = real
        token (None = no padding). n_blocks limits the depth (for early-exit inference)."""
        x, mask, key_pad = self.embed_input(ids, mask)
        w = mask.to(x.dtype).unsqueeze(-1)
        count = w.sum(dim=1)
        lex = self.lexical_logits(ids, mask)
        out = []
        for i, block in enumerate(self.blocks):
            if n_blocks is not None and i >= n_blocks:
                break
            x = self.run_block(i, block, x, key_pad)
            out.append(self.exit_logits(i, (x * w).sum(dim=1) / count, lex))
        return torch.stack(out)

    def run_block(self, i, block, x, key_pad):
        """Block i on x, or (stochastic depth, training only) x itself for the samples that skip it."""
        y = block(x, key_pad)
        if not self.training or self.layer_drop <= 0.0:
            return y
        p = self.layer_drop * (i + 1) / len(self.blocks)
        keep = torch.rand(x.shape[0], 1, 1) >= p
        return torch.where(keep, y, x)

    def lexical_logits(self, ids, mask):
        """The lexical head's z [B, C] (None without one): computed once, added at every exit."""
        return None if self.lexical is None else self.lexical(ids, mask)

    def exit_logits(self, i, pooled, lex):
        """Exit i's logits: (E_i pooled + c_i + z_lex) / T_i, each step in float32 in this order (the engine's)."""
        z = self.exits[i](pooled)
        if lex is not None:
            z = z + lex
        return z if self.temperatures is None else z / self.temperatures[i]
