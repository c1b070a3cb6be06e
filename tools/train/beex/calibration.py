"""Probability calibration of the exits: expected calibration error and one temperature per exit
fitted on dev (docs/MODEL.md, Exits: z_i / T_i)."""
import numpy as np


def _log_softmax64(z):
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def ece(logits, labels, bins=15):
    """Expected calibration error of softmax(logits) [N, C]: the top-class confidence in `bins`
    equal-width bins over [0, 1] (right-closed, as Guo et al. 2017), sum over bins of
    |bin| / N * |accuracy - mean confidence|."""
    p = np.exp(_log_softmax64(logits))
    conf = p.max(axis=-1)
    correct = (p.argmax(axis=-1) == np.asarray(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(conf) * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def nll(logits, labels, t=1.0):
    lp = _log_softmax64(np.asarray(logits, dtype=np.float64) / t)
    return float(-lp[np.arange(len(lp)), np.asarray(labels)].mean())


def fit_temperature(logits, labels):
    """T > 0 minimizing the mean NLL of softmax(z / T): a log-spaced grid over [0.05, 50], then a
    finer one around the best point; rounded to 4 significant digits (stored as given)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(50.0), 241))
    best = min(grid, key=lambda t: nll(logits, labels, t))
    fine = best * np.exp(np.linspace(-0.03, 0.03, 61))
    best = min(fine, key=lambda t: nll(logits, labels, t))
    return float(f"{best:.4g}")


def fit_temperatures(logits, labels):
    """One temperature per exit; logits [N, L, C]."""
    logits = np.asarray(logits)
    return [fit_temperature(logits[:, i], labels) for i in range(logits.shape[1])]


def apply_temperatures(logits, temperatures):
    """z_i / T_i in float32, exactly as the model's forward pass and the engine compute it."""
    logits = np.asarray(logits, dtype=np.float32)
    t = np.asarray(temperatures, dtype=np.float64).astype(np.float32)
    return (logits / t[None, :, None]).astype(np.float32)


def crossfit_folds(n, folds=2, seed=0):
    """The (fit, scored) index pairs of every cross-fit on dev: a seeded shuffle of range(n) cut into
    `folds` parts; each part is scored once with the others as the fit set."""
    parts = np.array_split(np.random.RandomState(seed).permutation(n), folds)
    return [(np.concatenate([parts[j] for j in range(folds) if j != k]), parts[k]) for k in range(folds)]


def crossfit_ece(logits, labels, bins=15, folds=2, seed=0):
    """ECE of temperature scaling measured honestly on dev: fit T on the other folds, score the
    held-out fold, average the folds' ECEs weighted by size. logits [N, C]."""
    labels = np.asarray(labels)
    total = 0.0
    for train, test in crossfit_folds(len(labels), folds, seed):
        t = fit_temperature(logits[train], labels[train])
        total += len(test) * ece(np.asarray(logits)[test] / t, labels[test], bins)
    return total / len(labels)
