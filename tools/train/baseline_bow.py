#!/usr/bin/python3
"""Bag-of-words baseline: logistic regression (softmax for C > 2 classes) on binary unigram +
bigram features, numpy only, trained on the training TSV; the L2 strength (3e-5, 1e-4, 3e-4; and
optionally the minimum feature count, --min-counts) is chosen on dev (for TREC, which has no dev split, on the same 500
held-out training rows the trainer uses; the test accuracy is then printed too).

    /usr/bin/python3 tools/train/baseline_bow.py                 # SST-2: dev accuracy
    /usr/bin/python3 tools/train/baseline_bow.py --task trec     # TREC: held-out + test accuracy
    /usr/bin/python3 tools/train/baseline_bow.py --json          # one JSON line

Full-batch Adam on the L2-regularized mean cross-entropy (convex; 400 steps reach the optimum to
well under 0.1 point of accuracy); a few seconds per setting.
"""
import argparse
import json
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from beex.data import read_tsv  # noqa: E402
from beex.train import repo_path  # noqa: E402

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|'[a-z]+|[^\sa-z0-9]")


def tokens(text):
    return WORD.findall(text.lower())


def ngrams(text, n):
    t = tokens(text)
    out = set(t)
    if n >= 2:
        out.update(a + " " + b for a, b in zip(t, t[1:]))
    return out


def featurize(texts, n, vocab=None, min_count=1):
    grams = [ngrams(t, n) for t in texts]
    if vocab is None:
        counts = {}
        for g in grams:
            for x in g:
                counts[x] = counts.get(x, 0) + 1
        vocab = {x: i for i, x in enumerate(sorted(k for k, c in counts.items() if c >= min_count))}
    rows = [np.array(sorted(vocab[x] for x in g if x in vocab), dtype=np.int64) for g in grams]
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return vocab, flat, lens


def logits(W, b, flat, lens):
    # the sum of each sample's feature rows, by cumulative sums
    cs = np.vstack([np.zeros((1, W.shape[1])), np.cumsum(W[flat], axis=0)])
    ends = np.cumsum(lens)
    z = cs[ends] - cs[ends - lens]
    return z + b


def fit(flat, lens, y, n_feat, C, l2, steps=400, lr=0.05):
    N = len(lens)
    W = np.zeros((n_feat, C))
    b = np.zeros(C)
    Y = np.eye(C)[y]
    row = np.repeat(np.arange(N), lens)
    mW, vW, mb, vb = np.zeros_like(W), np.zeros_like(W), np.zeros_like(b), np.zeros_like(b)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        z = logits(W, b, flat, lens)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - Y) / N  # [N, C]
        gW = np.stack([np.bincount(flat, weights=g[row, c], minlength=n_feat) for c in range(C)], axis=1)
        gW += l2 * W
        gb = g.sum(axis=0)
        for P, G, M, V in ((W, gW, mW, vW), (b, gb, mb, vb)):
            M *= b1
            M += (1 - b1) * G
            V *= b2
            V += (1 - b2) * G * G
            P -= lr * (M / (1 - b1 ** t)) / (np.sqrt(V / (1 - b2 ** t)) + eps)
    return W, b


def accuracy(W, b, flat, lens, y):
    return float((logits(W, b, flat, lens).argmax(axis=1) == np.asarray(y)).mean())


def load(task):
    if task == "sst2":
        tr, trl = read_tsv(repo_path("data/sst2/train.tsv"))
        dv, dvl = read_tsv(repo_path("data/sst2/dev.tsv"))
        return tr, trl, dv, dvl, None, None
    if task == "trec":
        tr, trl = read_tsv(repo_path("data/trec/train.tsv"))
        te, tel = read_tsv(repo_path("data/trec/test.tsv"))
        perm = np.random.RandomState(12345).permutation(len(tr))  # the trainer's holdout (beex/train.py)
        ho, keep = perm[-500:], perm[:-500]
        return ([tr[i] for i in keep], [trl[i] for i in keep], [tr[i] for i in ho], [trl[i] for i in ho], te, tel)
    raise SystemExit(f"unknown task {task}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="sst2", choices=("sst2", "trec"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--save", action="store_true", help="write the result to tools/train/baselines/<task>.json (report.py reads it)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--min-counts", type=int, nargs="+", default=[1],
                    help="minimum training count of a feature, each tried (default: 1)")
    ap.add_argument("--ngrams", type=int, nargs="+", default=[2], help="n-gram orders to try (default: 2 = uni+bigrams)")
    args = ap.parse_args()
    tr, trl, dv, dvl, te, tel = load(args.task)
    y_tr, y_dv = np.asarray(trl), np.asarray(dvl)
    C = int(max(y_tr.max(), y_dv.max())) + 1
    best = None
    t0 = time.time()
    for n in args.ngrams:
        for min_count in args.min_counts:
            vocab, flat, lens = featurize(tr, n, min_count=min_count)
            _, dflat, dlens = featurize(dv, n, vocab)
            for l2 in (3e-5, 1e-4, 3e-4):
                W, b = fit(flat, lens, y_tr, len(vocab), C, l2)
                acc = accuracy(W, b, dflat, dlens, y_dv)
                if not args.quiet and not args.json:
                    print(f"ngrams 1..{n} min_count {min_count} l2 {l2:g}: features {len(vocab)}, dev {acc:.4f}")
                if best is None or acc > best[0]:
                    best = (acc, {"ngrams": n, "min_count": min_count, "l2": l2}, vocab, W, b)
    acc, settings, vocab, W, b = best
    out = {"task": args.task, "model": "bow-logreg", "settings": settings, "features": len(vocab),
           "dev_acc": round(acc, 4), "seconds": round(time.time() - t0, 1)}
    if te is not None:
        _, tflat, tlens = featurize(te, settings["ngrams"], vocab)
        out["test_acc"] = round(accuracy(W, b, tflat, tlens, tel), 4)
    if args.save:
        d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "baselines")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{args.task}.json"), "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
    if args.json:
        print(json.dumps(out))
    else:
        dev_name = "held-out" if te is not None else "dev"
        print(f"best on {dev_name}: {json.dumps(settings)} -> {dev_name} accuracy {acc:.4f}"
              + (f", test accuracy {out['test_acc']:.4f}" if te is not None else ""))


if __name__ == "__main__":
    main()
