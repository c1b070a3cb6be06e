"""Exit policies of docs/MODEL.md, evaluated on the per-block outputs of a whole dataset.

Inputs are float32 numpy arrays: logits [N, L, C]; entropies are computed from them in float32.
Each policy returns the 1-based exit block per sample; the last block always answers.
Comparisons follow IEEE float32 semantics (a NaN comparison is false), as the engine's do.
"""
import math

import numpy as np

POLICIES = ("entropy_reduction", "entropy", "normalized_entropy", "confidence", "patience", "none")


def softmax_np(logits):
    z = logits.astype(np.float32)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def entropies_np(logits):
    p = softmax_np(logits)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0).astype(np.float32)
    return (-terms.sum(axis=-1)).astype(np.float32)


def _first_true(cond):
    """1-based index of the first True along axis 1; the last block when none is (it answers)."""
    n, L = cond.shape
    cond = cond.copy()
    cond[:, L - 1] = True
    return cond.argmax(axis=1) + 1


def exit_blocks(policy, params, logits, entropies=None):
    logits = np.asarray(logits, dtype=np.float32)
    n, L, C = logits.shape
    H = entropies_np(logits) if entropies is None else np.asarray(entropies, dtype=np.float32)
    ln_c = np.float32(math.log(C))
    if policy == "none":
        return np.full(n, L, dtype=np.int64)
    if policy == "entropy_reduction":
        # delta_i = (H_{i-1} - H_i) / H_{i-1} for i >= 2; block 1 has no earlier block, so no
        # reduction is observed there: delta_1 = 0 and block 1 exits when H_1 / ln C < kappa
        # (docs/MODEL.md, Exits; the shared spec's H_0 = ln C made a sure block 1 stay).
        tau, kappa = np.float32(params["tau"]), np.float32(params["kappa"])
        h_prev = H[:, :-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = ((h_prev - H[:, 1:]) / h_prev).astype(np.float32)
        delta = np.concatenate([np.zeros((n, 1), dtype=np.float32), delta], axis=1)
        cond = (delta < tau) & ((H / ln_c).astype(np.float32) < kappa)
        return _first_true(cond)
    if policy == "entropy":
        return _first_true(H < np.float32(params["tau"]))
    if policy == "normalized_entropy":
        return _first_true((H / ln_c).astype(np.float32) < np.float32(params["tau"]))
    if policy == "confidence":
        return _first_true(softmax_np(logits).max(axis=-1) >= np.float32(params["tau"]))
    if policy == "patience":
        t = int(params["t"])
        if t < 1:
            raise ValueError("patience t must be >= 1")
        am = logits.argmax(axis=-1)
        run = np.zeros((n, L), dtype=np.int64)
        for i in range(1, L):
            run[:, i] = np.where(am[:, i] == am[:, i - 1], run[:, i - 1] + 1, 0)
        return _first_true(run >= t)
    raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")


def evaluate_policy(policy, params, logits, labels):
    """(accuracy, mean blocks used, exit blocks) of a policy on a dataset."""
    exits = exit_blocks(policy, params, logits)
    logits = np.asarray(logits)
    pred = logits[np.arange(len(exits)), exits - 1].argmax(axis=-1)
    acc = float((pred == np.asarray(labels)).mean())
    return acc, float(exits.mean()), exits


def _grid(policy, L, C):
    """Candidate parameters. The grids stop short of the values that switch a condition off
    (kappa >= 1 for entropy_reduction, a normalized-entropy threshold of 1; they reach 0.95,
    which still keeps a temperature-scaled two-class exit with p < 0.63 running): on a model
    whose first exit is as good as its last, those win on dev by exiting every sample at block 1
    regardless of its entropy, which no longer tells sure samples from unsure ones on held-out
    text."""
    ln_c = math.log(C)
    if policy == "entropy_reduction":
        taus = [0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]
        kappas = [0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]
        return [{"tau": t, "kappa": k} for t in taus for k in kappas]
    if policy == "entropy":
        return [{"tau": round(float(f * ln_c), 4)} for f in np.linspace(0.01, 0.95, 95)]
    if policy == "normalized_entropy":
        return [{"tau": round(float(t), 3)} for t in np.linspace(0.01, 0.95, 95)]
    if policy == "confidence":
        lo = 1.0 / C + 0.1 * (1 - 1.0 / C)
        return [{"tau": round(float(t), 4)} for t in np.linspace(lo, 0.999, 100)]
    if policy == "patience":
        return [{"t": t} for t in range(1, L)]
    return [{}]


def calibrate(policy, logits, labels, max_drop=0.005):
    """Parameters that use the fewest blocks with accuracy >= full-depth accuracy - max_drop.

    Ties in mean blocks go to the higher accuracy. Returns (params, acc, mean_blocks)."""
    logits = np.asarray(logits, dtype=np.float32)
    L, C = logits.shape[1], logits.shape[2]
    full_acc, _, _ = evaluate_policy("none", {}, logits, labels)
    best = None
    for params in _grid(policy, L, C):
        acc, blocks, _ = evaluate_policy(policy, params, logits, labels)
        if acc + 1e-9 < full_acc - max_drop:
            continue
        key = (blocks, -acc)
        if best is None or key < best[0]:
            best = (key, params, acc, blocks)
    if best is None:  # nothing qualifies (cannot happen when the grid reaches full depth)
        return {}, full_acc, float(L)
    return best[1], best[2], best[3]
