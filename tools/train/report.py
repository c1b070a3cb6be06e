#!/usr/bin/python3
"""Markdown rows of the results table from runs/<name>/result.json:

    /usr/bin/python3 tools/train/report.py sst2-default cmp-fp32 cmp-w1a32 ...
"""
import json
import os
import sys

RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs")

HEADER = ("| run | W/A/E bits | budget | dev acc (full depth) | dev acc, entropy_reduction | mean blocks (saved) "
          "| thresholds (tau, kappa) | params | FP32 MB | packed MB | ratio | train time |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


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
    return (f"| {name} | {m['weight_bits']}/{m['act_bits']}/{m['emb_bits']} | {budget} | {100 * acc_full:.2f}{note} "
            f"| {100 * er['acc']:.2f} | {er['mean_blocks']:.2f} of {L} ({100 * (1 - er['mean_blocks'] / L):.0f}%) "
            f"| {er['params'].get('tau')}, {er['params'].get('kappa')} | {sz['params']:,} | {sz['fp32_bytes'] / 1e6:.2f} "
            f"| {sz['packed_bytes'] / 1e6:.3f} | {sz['ratio']:.1f}x | {x['train_seconds'] / 60:.1f} min |")


if __name__ == "__main__":
    print(HEADER)
    for n in sys.argv[1:]:
        if os.path.exists(os.path.join(RUNS, n, "result.json")):
            print(row(n))
        else:
            print(f"| {n} | (not finished) |")
