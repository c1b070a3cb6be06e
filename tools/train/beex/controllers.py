"""Learned exit controllers of docs/MODEL.md "Mechanisms from the seeds": PALBERT's Q-exit
(`q_exit`) and JEI-DNN's gate (`learned_gate`), and split-conformal prediction sets.

The torch modules hold the contract's tensors (names without the `q_exit.` / `learned_gate.`
prefix; `export_tensors` adds it). The numpy functions are the float32 reference of the formulas
in the contract's order; the exit-block functions follow beex/policies.py (1-based exit block,
the last block always answers, IEEE float32 comparisons).

Inputs:
- pooled states m [N, L + 1, d]: m_0 = pool of the embedding output (LN_emb), m_i = pool of
  block i's output (mean over the sample's real tokens);
- logits [N, L, C]: every exit's temperature-divided logits (what the policies read).
"""
import math

import numpy as np
import torch
import torch.nn as nn

from .calibration import crossfit_folds
from .policies import entropies_np, softmax_np

Q_EXIT_PREFIX = "q_exit."
GATE_PREFIX = "learned_gate."


# ----------------------------------------------------------------------------- q_exit (PALBERT)

class QExit(nn.Module):
    """lambda_i = sigmoid(MLP([m_i ; m_{i-1}] + e_i)); MLP = 3 x (Linear + Tanh), Linear -> 1.

    Parameters: pos [L, 2d] (e_i is row i-1), mlp.0 [H, 2d], mlp.1 and mlp.2 [H, H], mlp.3 [1, H]."""

    def __init__(self, d_model, n_layers, hidden):
        super().__init__()
        self.d, self.L, self.hidden = d_model, n_layers, hidden
        self.pos = nn.Parameter(torch.randn(n_layers, 2 * d_model) * 0.02)
        self.mlp = nn.ModuleList([nn.Linear(2 * d_model, hidden), nn.Linear(hidden, hidden),
                                  nn.Linear(hidden, hidden), nn.Linear(hidden, 1)])

    def lambda_logits(self, pooled):
        """pooled [N, L + 1, d] -> pre-sigmoid logits [N, L]."""
        u = torch.cat([pooled[:, 1:], pooled[:, :-1]], dim=-1) + self.pos  # [N, L, 2d]
        a = u
        for lin in self.mlp[:3]:
            a = torch.tanh(lin(a))
        return self.mlp[3](a).squeeze(-1)

    def forward(self, pooled):
        """lambda [N, L]."""
        return torch.sigmoid(self.lambda_logits(pooled))


def halting_distribution(lam, last_takes_rest=True):
    """PonderNet's p_i = lambda_i prod_{j<i}(1 - lambda_j) (torch, [N, L]); with last_takes_rest
    p_L = prod_{j<L}(1 - lambda_j), the remaining mass (training; the policy's last block answers)."""
    n, L = lam.shape
    rest = torch.ones(n, dtype=lam.dtype)
    ps = []
    for i in range(L):
        if i == L - 1 and last_takes_rest:
            ps.append(rest)
        else:
            ps.append(lam[:, i] * rest)
            rest = rest * (1 - lam[:, i])
    return torch.stack(ps, dim=1)


def geometric_prior(lambda_p, n_layers, eps=0.05):
    """The PonderNet/PALBERT prior: geometric with parameter lambda_p, truncated after the first
    step whose cumulative mass passes 1 - eps (or at n_layers, whichever is first), renormalised.
    float64 numpy [L]; zero beyond the truncation."""
    k = np.arange(n_layers, dtype=np.float64)
    g = lambda_p * (1 - lambda_p) ** k
    cum = np.cumsum(g)
    over = np.nonzero(cum > 1 - eps)[0]
    n = int(over[0]) + 1 if len(over) else n_layers
    g[n:] = 0
    return g / g.sum()


def q_exit_loss(lam, ce, prior, beta):
    """sum_i p_i CE_i + beta KL(p || prior), averaged over the batch. lam, ce [N, L]; prior [L]."""
    p = halting_distribution(lam, last_takes_rest=True)
    task = (p * ce).sum(1)
    prior = torch.as_tensor(prior, dtype=p.dtype)
    logp = torch.log(p.clamp_min(1e-12))
    logq = torch.log(prior.clamp_min(1e-30))
    kl = (p * (logp - logq)).sum(1)
    return (task + beta * kl).mean(), task.mean(), kl.mean()


def _linear_np(W, b, x):
    """x [N, K] @ W.T + b in float32."""
    return (x.astype(np.float32) @ W.astype(np.float32).T + b.astype(np.float32)).astype(np.float32)


def q_exit_lambdas_np(tensors, pooled):
    """float32 reference of lambda_i. tensors: {name: array} under the contract's names (with or
    without the `q_exit.` prefix); pooled [N, L + 1, d] -> [N, L]."""
    t = {k[len(Q_EXIT_PREFIX):] if k.startswith(Q_EXIT_PREFIX) else k: np.asarray(v, dtype=np.float32)
         for k, v in tensors.items()}
    pooled = np.asarray(pooled, dtype=np.float32)
    n, L1, d = pooled.shape
    L = L1 - 1
    out = np.empty((n, L), dtype=np.float32)
    for i in range(L):
        u = (np.concatenate([pooled[:, i + 1], pooled[:, i]], axis=1) + t["pos"][i]).astype(np.float32)
        a = u
        for j in range(3):
            a = np.tanh(_linear_np(t[f"mlp.{j}.weight"], t[f"mlp.{j}.bias"], a)).astype(np.float32)
        z = _linear_np(t["mlp.3.weight"], t["mlp.3.bias"], a)[:, 0]
        out[:, i] = sigmoid_np(z)
    return out


def sigmoid_np(z):
    """1 / (1 + exp(-z)) in float32 (exp overflow to inf gives 0, as in float32 C#)."""
    z = np.asarray(z, dtype=np.float32)
    with np.errstate(over="ignore"):
        return (np.float32(1) / (np.float32(1) + np.exp(-z))).astype(np.float32)


def q_exit_cumulative_np(lam):
    """(p, S) in the contract's float32 order: R_0 = 1, S_0 = 0; p_i = lambda_i R_{i-1};
    S_i = S_{i-1} + p_i; R_i = R_{i-1} (1 - lambda_i). lam [N, L] -> p, S [N, L]."""
    lam = np.asarray(lam, dtype=np.float32)
    n, L = lam.shape
    p = np.empty_like(lam)
    S = np.empty_like(lam)
    R = np.ones(n, dtype=np.float32)
    s = np.zeros(n, dtype=np.float32)
    one = np.float32(1)
    for i in range(L):
        p[:, i] = (lam[:, i] * R).astype(np.float32)
        s = (s + p[:, i]).astype(np.float32)
        S[:, i] = s
        R = (R * (one - lam[:, i])).astype(np.float32)
    return p, S


def _first_true(cond):
    n, L = cond.shape
    cond = np.array(cond, dtype=bool)
    cond[:, L - 1] = True
    return cond.argmax(axis=1) + 1


def q_exit_exit_blocks(lam, q):
    """Policy `q_exit`: the first block with S_i > q (1-based); the last block always answers."""
    _, S = q_exit_cumulative_np(lam)
    return _first_true(S > np.float32(q))


# ----------------------------------------------------------------------- learned_gate (JEI-DNN)

def gate_features_np(logits, power):
    """phi [N, L, 4] = [max p, H(p), p_(1) - p_(2), H(softmax(k ln p))] of every exit, float32.
    logits [N, L, C] (temperature-divided). Needs C >= 2."""
    logits = np.asarray(logits, dtype=np.float32)
    p = softmax_np(logits)
    srt = np.sort(p, axis=-1)
    top1, top2 = srt[..., -1], srt[..., -2]
    H = entropies_np(logits)
    with np.errstate(divide="ignore"):
        lnp = np.log(p).astype(np.float32)
    powered = (np.float32(power) * lnp).astype(np.float32)  # -inf where p = 0
    Hk = entropies_np(powered)
    return np.stack([top1, H, (top1 - top2).astype(np.float32), Hk], axis=-1).astype(np.float32)


class LearnedGate(nn.Module):
    """g_i = sigmoid(w_i . phi_i + b_i); weight [L, 4], bias [L]."""

    def __init__(self, n_layers, power=2.0):
        super().__init__()
        self.power = float(power)
        self.weight = nn.Parameter(torch.zeros(n_layers, 4))
        self.bias = nn.Parameter(torch.zeros(n_layers))

    def gate_logits(self, phi):
        return (phi * self.weight).sum(-1) + self.bias

    def forward(self, phi):
        """phi [N, L, 4] -> g [N, L]."""
        return torch.sigmoid(self.gate_logits(phi))


def gate_scores_np(tensors, phi):
    """float32 reference of g_i: w_i0 phi_0 + w_i1 phi_1 + w_i2 phi_2 + w_i3 phi_3 (in that order),
    + b_i, then sigmoid. tensors with or without the `learned_gate.` prefix; phi [N, L, 4]."""
    t = {k[len(GATE_PREFIX):] if k.startswith(GATE_PREFIX) else k: np.asarray(v, dtype=np.float32)
         for k, v in tensors.items()}
    phi = np.asarray(phi, dtype=np.float32)
    w, b = t["weight"], t["bias"]
    acc = (w[None, :, 0] * phi[..., 0]).astype(np.float32)
    for j in range(1, 4):
        acc = (acc + (w[None, :, j] * phi[..., j]).astype(np.float32)).astype(np.float32)
    return sigmoid_np((acc + b[None, :]).astype(np.float32))


def learned_gate_exit_blocks(g, tau):
    """Policy `learned_gate`: the first block with g_i >= tau; the last block always answers."""
    return _first_true(np.asarray(g, dtype=np.float32) >= np.float32(tau))


def oracle_exits(ce, lambda_cost):
    """JEI-DNN's oracle exit per sample, 1-based: argmin_l CE_l + lambda_cost * l / L (first on ties)."""
    ce = np.asarray(ce, dtype=np.float64)
    L = ce.shape[1]
    cost = lambda_cost * np.arange(1, L + 1) / L
    return (ce + cost[None]).argmin(axis=1) + 1


def gate_targets(oracle, n_layers):
    """Target of gate l: 1 when the sample should have exited by l (oracle exit <= l), [N, L]."""
    return (np.asarray(oracle)[:, None] <= np.arange(1, n_layers + 1)[None]).astype(np.float32)


# ---------------------------------------------------------------------------- conformal sets

def answer_probs(logits, exits):
    """softmax of the answering exit's logits, float32 [N, C]."""
    logits = np.asarray(logits, dtype=np.float32)
    exits = np.asarray(exits)
    return softmax_np(logits[np.arange(len(exits)), exits - 1])


def conformal_qhat(probs, labels, alpha):
    """Split-conformal threshold: the ceil((n + 1)(1 - alpha))-th smallest score 1 - p_y (float32);
    1.0 when that index exceeds n (every class is then in every set)."""
    probs = np.asarray(probs, dtype=np.float32)
    labels = np.asarray(labels)
    n = len(labels)
    scores = np.sort((np.float32(1) - probs[np.arange(n), labels]).astype(np.float32))
    k = int(math.ceil((n + 1) * (1 - alpha) - 1e-9))
    if k > n:
        return 1.0
    return float(scores[max(k, 1) - 1])


def conformal_sets(probs, qhat):
    """Membership [N, C]: class c is in the set when 1 - p_c <= qhat (float32)."""
    probs = np.asarray(probs, dtype=np.float32)
    return (np.float32(1) - probs).astype(np.float32) <= np.float32(qhat)


def conformal_crossfit(probs, labels, alpha, seed=0):
    """Coverage and mean set size with qhat fitted on one half of the data and measured on the
    other, both ways (averaged over the two halves, weighted by size)."""
    labels = np.asarray(labels)
    cov = size = 0.0
    qhats = []
    for cal, test in crossfit_folds(len(labels), 2, seed):
        qh = conformal_qhat(probs[cal], labels[cal], alpha)
        qhats.append(qh)
        sets = conformal_sets(probs[test], qh)
        cov += sets[np.arange(len(test)), labels[test]].sum()
        size += sets.sum()
    return {"coverage": float(cov / len(labels)), "mean_size": float(size / len(labels)), "qhats": qhats}


# ---------------------------------------------------------------------------------- export

def export_tensors(qexit=None, gate=None):
    """The controllers' tensors under the contract's names, float32, contiguous."""
    out = {}
    if qexit is not None:
        for k, v in qexit.state_dict().items():
            out[Q_EXIT_PREFIX + k] = v.detach().cpu().float().contiguous()
    if gate is not None:
        for k, v in gate.state_dict().items():
            out[GATE_PREFIX + k] = v.detach().cpu().float().contiguous()
    return out


def controller_names(d_model, n_layers, hidden):
    """{name: shape} of both controllers' tensors (the contract's tables)."""
    return {"q_exit.pos": (n_layers, 2 * d_model),
            "q_exit.mlp.0.weight": (hidden, 2 * d_model), "q_exit.mlp.0.bias": (hidden,),
            "q_exit.mlp.1.weight": (hidden, hidden), "q_exit.mlp.1.bias": (hidden,),
            "q_exit.mlp.2.weight": (hidden, hidden), "q_exit.mlp.2.bias": (hidden,),
            "q_exit.mlp.3.weight": (1, hidden), "q_exit.mlp.3.bias": (1,),
            "learned_gate.weight": (n_layers, 4), "learned_gate.bias": (n_layers,)}
