#!/usr/bin/python3
"""Markdown rows of the results table from runs/<name>/result.json:

    /usr/bin/python3 tools/train/report.py sst2-default cmp-fp32 cmp-w1a32 ...
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.join(HERE, "runs")

HEADER = ("| run | W/A/E bits | budget | dev acc (full depth) | BoW baseline dev | dev acc at static depth 1..L "
          "| dev acc, entropy_reduction | mean blocks (saved) "
          "| thresholds (tau, kappa) | params | FP32 MB | packed MB | ratio | train time |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def baseline(task):
    """The bag-of-words baseline's dev (TREC: held-out) accuracy, from baselines/<task>.json
    (written by baseline_bow.py --save)."""
    path = os.path.join(HERE, "baselines", f"{task}.json")
    if not os.path.exists(path):
        return "?"
    with open(path) as f:
        b = json.load(f)
    return f"{100 * b['dev_acc']:.2f}" + (f" / test {100 * b['test_acc']:.1f}" if "test_acc" in b else "")


def row(name):
    with open(os.path.join(RUNS, name, "result.json")) as f:
        r = json.load(f)
    m, t, x = r["model"], r["train"], r["metrics"]
    er = x["policies"]["entropy_reduction"]
    L = m["n_layers"]
    sz = x["sizes"]
    budget = f"{x['steps']} steps x {t['batch_size']} (best @ {x['best_step']})"
    acc_full = x["dev_acc_full"]
    note = ""
    if x.get("test"):
        note = f" / test {100 * x['test']['acc_full']:.1f}"
    task = "trec" if "trec" in json.dumps(r.get("train", {})) + name else "sst2"
    static = " ".join(f"{100 * a:.2f}" for a in x["dev_acc_per_exit"])
    return (f"| {name} | {m['weight_bits']}/{m['act_bits']}/{m['emb_bits']} | {budget} | {100 * acc_full:.2f}{note} "
            f"| {baseline(task)} | {static} | {100 * er['acc']:.2f} | {er['mean_blocks']:.2f} of {L} ({100 * (1 - er['mean_blocks'] / L):.0f}%) "
            f"| {er['params'].get('tau')}, {er['params'].get('kappa')} | {sz['params']:,} | {sz['fp32_bytes'] / 1e6:.2f} "
            f"| {sz['packed_bytes'] / 1e6:.3f} | {sz['ratio']:.1f}x | {x['train_seconds'] / 60:.1f} min |")


if __name__ == "__main__":
    print(HEADER)
    for n in sys.argv[1:]:
        if os.path.exists(os.path.join(RUNS, n, "result.json")):
            print(row(n))
        else:
            print(f"| {n} | (not finished) |")
