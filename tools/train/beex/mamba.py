"""DYNAMAX's Mamba exit classifier (docs/MODEL.md, Mechanisms from the seeds, `mamba_exits`).

Exit i reads block i's output u ([n, d]), runs one Mamba block over its tokens (in_proj without
bias, causal depthwise conv of width K with bias, SiLU, x_proj to [delta; B; C], dt_proj with
bias + softplus, the selective scan, y + D x, gate SiLU(z), out_proj without bias) and applies the
exit's linear head to pool(u + m), divided by the exit temperature. A zero out_proj makes the head
exactly the linear exit head: the distillation's starting point.

Parameter names are the contract's tensor names once the head sits at `exits.{i}`:
`exits.{i}.weight`, `exits.{i}.bias`, `exits.{i}.mamba.{in_proj.weight, conv.weight, conv.bias,
x_proj.weight, dt_proj.weight, dt_proj.bias, A_log, D, out_proj.weight}` (conv.weight is [E, K],
torch's [E, 1, K] depthwise kernel squeezed).

`mamba_block_np` / `exit_logits_np` are the numpy float32 reference (one sample, no padding)
that the golden file uses.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import safetensors_io
from .model import BEExformer

MAMBA_KEYS = ("d_inner", "d_state", "d_conv", "dt_rank")
MAMBA_TENSORS = ("in_proj.weight", "conv.weight", "conv.bias", "x_proj.weight", "dt_proj.weight",
                 "dt_proj.bias", "A_log", "D", "out_proj.weight")


class CausalDepthwiseConv(nn.Module):
    """x'_t[e] = bias[e] + sum_{k<K} weight[e, k] x_{t-K+1+k}[e], x_{t<0} = 0. weight is [E, K]."""

    def __init__(self, channels, width):
        super().__init__()
        self.width = width
        self.weight = nn.Parameter(torch.empty(channels, width))
        self.bias = nn.Parameter(torch.empty(channels))
        bound = 1.0 / math.sqrt(width)  # torch's Conv1d init: fan_in = (in / groups) * K = K
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        # x: [B, T, E] -> [B, T, E]; left zero padding makes it causal.
        xt = F.pad(x.transpose(1, 2), (self.width - 1, 0))
        return F.conv1d(xt, self.weight.unsqueeze(1), self.bias, groups=self.weight.shape[0]).transpose(1, 2)


class MambaBlock(nn.Module):
    """One Mamba (S6) block, the selective scan as a plain loop over the tokens."""

    def __init__(self, d_model, d_inner, d_state=16, d_conv=4, dt_rank=16,
                 dt_min=1e-3, dt_max=1e-1, dt_init_floor=1e-4):
        super().__init__()
        E, N, R = d_inner, d_state, dt_rank
        self.d_inner, self.d_state, self.dt_rank = E, N, R
        self.in_proj = nn.Linear(d_model, 2 * E, bias=False)
        self.conv = CausalDepthwiseConv(E, d_conv)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, d_model, bias=False)
        # Mamba's initialisation: dt_proj.weight uniform in +-R^-1/2, dt_proj.bias the inverse
        # softplus of dt log-uniform in [dt_min, dt_max] (floored); out_proj zero here, so the
        # exit starts as the linear head exactly.
        bound = R ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        dt = torch.exp(torch.rand(E) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        nn.init.zeros_(self.out_proj.weight)

    def forward(self, u):
        """u: [B, T, d] -> m: [B, T, d]. Causal: output t depends on u_0..u_t only, so right
        padding cannot change the real tokens' outputs (the pool must ignore the pads)."""
        E, N, R = self.d_inner, self.d_state, self.dt_rank
        x, z = self.in_proj(u).split(E, dim=-1)
        x = F.silu(self.conv(x))
        dt, Bm, Cm = self.x_proj(x).split([R, N, N], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # threshold 20, as the contract says
        A = -torch.exp(self.A_log)  # [E, N]
        dA = torch.exp(delta.unsqueeze(-1) * A)  # [B, T, E, N]
        dBx = (delta.unsqueeze(-1) * Bm.unsqueeze(2)) * x.unsqueeze(-1)  # (delta * B) * x
        h = torch.zeros(u.shape[0], E, N, dtype=u.dtype, device=u.device)
        hs = []
        # unbind, not dA[:, t]: the backward of a per-step index would build a full-size zero
        # gradient at every step (quadratic in T); unbind's backward is one stack.
        for a_t, b_t in zip(dA.unbind(1), dBx.unbind(1)):
            h = a_t * h + b_t
            hs.append(h)
        hs = torch.stack(hs, dim=1)  # [B, T, E, N]
        y = (hs * Cm.unsqueeze(2)).sum(-1) + self.D * x
        y = y * F.silu(z)
        return self.out_proj(y)


class MambaExitHead(nn.Module):
    """The exit: linear head (weight [C, d], bias [C]) on pool(u + Mamba(u))."""

    def __init__(self, d_model, n_classes, mcfg):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, d_model))
        self.bias = nn.Parameter(torch.zeros(n_classes))
        bound = 1.0 / math.sqrt(d_model)
        nn.init.uniform_(self.weight, -bound, bound)
        self.mamba = MambaBlock(d_model, mcfg["d_inner"], mcfg["d_state"], mcfg["d_conv"], mcfg["dt_rank"])

    def forward(self, u, mask=None):
        """u: [B, T, d]; mask: [B, T] bool (True = real token) or None. Logits [B, C], before
        the temperature."""
        v = u + self.mamba(u)
        if mask is None:
            pooled = v.mean(dim=1)
        else:
            v = v.masked_fill(~mask.unsqueeze(-1), 0.0)
            pooled = v.sum(dim=1) / mask.sum(dim=1, keepdim=True).to(v.dtype)
        return F.linear(pooled, self.weight, self.bias)


def check_mamba_cfg(mcfg):
    missing = [k for k in MAMBA_KEYS if k not in mcfg]
    if missing:
        raise ValueError(f"mamba_exits lacks {', '.join(missing)}")
    if any(int(mcfg[k]) < 1 for k in MAMBA_KEYS):
        raise ValueError("mamba_exits sizes must be positive")
    return {k: int(mcfg[k]) for k in MAMBA_KEYS}


class DynamaxModel(BEExformer):
    """The BEExformer with a Mamba exit classifier after every block (config key mamba_exits)."""

    def __init__(self, cfg, tok_map=None, mamba_cfg=None, dropout=0.0, attn_dropout=0.0):
        super().__init__(cfg, tok_map, dropout, attn_dropout)
        mcfg = check_mamba_cfg(mamba_cfg if mamba_cfg is not None else cfg["mamba_exits"])
        self.cfg["mamba_exits"] = mcfg
        d, C, L = cfg["d_model"], cfg["n_classes"], cfg["n_layers"]
        self.exits = nn.ModuleList(MambaExitHead(d, C, mcfg) for _ in range(L))

    def block_outputs(self, ids, mask=None, n_blocks=None):
        """[x_1, ..., x_L] (each [B, T, d]) and the mask."""
        x, mask, key_pad = self.embed_input(ids, mask)
        xs = []
        for i, block in enumerate(self.blocks):
            if n_blocks is not None and i >= n_blocks:
                break
            x = block(x, key_pad)
            xs.append(x)
        return xs, mask

    def head_logits(self, xs, mask=None):
        """Logits of every exit from the block outputs: [L', B, C], divided by the temperatures."""
        out = []
        for i, x in enumerate(xs):
            z = self.exits[i](x, mask)
            out.append(z if self.temperatures is None else z / self.temperatures[i])
        return torch.stack(out)

    def forward(self, ids, mask=None, n_blocks=None):
        xs, mask = self.block_outputs(ids, mask, n_blocks)
        return self.head_logits(xs, mask)


def from_backbone(model, mamba_cfg, seed=0):
    """A DynamaxModel carrying `model`'s backbone, linear heads and temperatures exactly, with fresh
    Mamba blocks (out_proj zero: the same outputs as `model`)."""
    torch.manual_seed(seed)
    cfg = dict(model.cfg)
    dm = DynamaxModel(cfg, tok_map=model.embed.tok_map, mamba_cfg=mamba_cfg)
    missing, unexpected = dm.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(".mamba." not in k for k in missing):
        raise ValueError(f"backbone mismatch: missing {missing}, unexpected {unexpected}")
    dm.set_temperatures(cfg.get("exit_temperatures"))
    dm.eval()
    return dm


def load_dynamax_dir(path):
    """Re-import an exported model directory that has mamba_exits."""
    tensors, meta = safetensors_io.load(os.path.join(path, "model.safetensors"))
    cfg = json.loads(meta["config"])
    model = DynamaxModel(cfg, tok_map=tensors.get("embed.tok_map"))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    model.eval()
    return model, cfg


# ---- numpy float32 reference (one sample, no padding) ----

def _f32(a):
    return np.asarray(a, dtype=np.float32)


def _sigmoid(v):
    with np.errstate(over="ignore"):
        return (np.float32(1) / (np.float32(1) + np.exp(-v))).astype(np.float32)


def _silu(v):
    return (v * _sigmoid(v)).astype(np.float32)


def _softplus(v):
    # v for v > 20, else ln(1 + e^v) (torch's threshold); exp only of the clipped value.
    return np.where(v > np.float32(20), v, np.log1p(np.exp(np.minimum(v, np.float32(20))))).astype(np.float32)


def mamba_block_np(p, u):
    """p: {tensor name without the `exits.{i}.mamba.` prefix: float32 array}; u: [n, d] float32.
    Returns m: [n, d] float32, in the contract's order of operations."""
    u = _f32(u)
    W_in, w_conv, b_conv = _f32(p["in_proj.weight"]), _f32(p["conv.weight"]), _f32(p["conv.bias"])
    W_x, W_dt, b_dt = _f32(p["x_proj.weight"]), _f32(p["dt_proj.weight"]), _f32(p["dt_proj.bias"])
    A_log, D, W_out = _f32(p["A_log"]), _f32(p["D"]), _f32(p["out_proj.weight"])
    E, K = w_conv.shape
    N = A_log.shape[1]
    R = W_dt.shape[1]
    n = u.shape[0]
    xz = (u @ W_in.T).astype(np.float32)
    x, z = xz[:, :E], xz[:, E:]
    xc = np.empty_like(x)
    for t in range(n):
        acc = b_conv.copy()
        for k in range(K):
            s = t - K + 1 + k
            if s >= 0:
                acc = (acc + w_conv[:, k] * x[s]).astype(np.float32)
        xc[t] = acc
    x = _silu(xc)
    dbc = (x @ W_x.T).astype(np.float32)
    dt, Bm, Cm = dbc[:, :R], dbc[:, R:R + N], dbc[:, R + N:]
    delta = _softplus((dt @ W_dt.T + b_dt).astype(np.float32))
    A = (-np.exp(A_log)).astype(np.float32)
    h = np.zeros((E, N), dtype=np.float32)
    y = np.empty((n, E), dtype=np.float32)
    for t in range(n):
        dA = np.exp(delta[t][:, None] * A)
        dBx = (delta[t][:, None] * Bm[t][None, :]) * x[t][:, None]
        h = (dA * h + dBx).astype(np.float32)
        y[t] = (h @ Cm[t] + D * x[t]).astype(np.float32)
    y = (y * _silu(z)).astype(np.float32)
    return (y @ W_out.T).astype(np.float32)


def exit_logits_np(p, u, weight, bias, temperature=None):
    """One exit: (E_i . pool(u + m) + c_i) / T_i, float32. p as for mamba_block_np."""
    u = _f32(u)
    v = (u + mamba_block_np(p, u)).astype(np.float32)
    pooled = (v.sum(axis=0) / np.float32(v.shape[0])).astype(np.float32)
    zl = (_f32(weight) @ pooled + _f32(bias)).astype(np.float32)
    if temperature is not None:
        zl = (zl / np.float32(temperature)).astype(np.float32)
    return zl


def head_params_np(head):
    """A MambaExitHead's tensors as float32 numpy: (mamba params, weight, bias)."""
    p = {k: v.detach().cpu().float().numpy() for k, v in head.mamba.state_dict().items()}
    return p, head.weight.detach().cpu().float().numpy(), head.bias.detach().cpu().float().numpy()


@torch.no_grad()
def sample_outputs_np(model, ids):
    """Logits of every exit for one sample [L, C], float32: the torch backbone's block outputs
    (float32, no padding), then each exit by the numpy reference."""
    model.eval()
    xs, _ = model.block_outputs(torch.tensor([ids], dtype=torch.int64))
    temps = model.cfg.get("exit_temperatures")
    rows = []
    for i, x in enumerate(xs):
        p, w, b = head_params_np(model.exits[i])
        rows.append(exit_logits_np(p, x[0].float().numpy(), w, b, None if temps is None else temps[i]))
    return np.stack(rows).astype(np.float32)


def head_macs(d, E, N, K, R, C=2):
    """Multiply-accumulates of one Mamba exit per token (float), by part; pool + head once per sample."""
    parts = {"in_proj": d * 2 * E, "conv": E * K, "x_proj": E * (R + 2 * N), "dt_proj": R * E,
             "scan": 3 * E * N, "readout": E * N + E, "gate": E, "out_proj": E * d}
    return parts, sum(parts.values())
