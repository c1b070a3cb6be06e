#!/usr/bin/env python3
"""Compares two `binengine batch --logits` JSONL outputs of the same input: labels and exit blocks must be
equal row for row, every computed exit's logits within TOL (default 5e-3, the engine's documented tolerance
against the trainer; README "Results"). Prints the largest logit difference; exits 1 on any mismatch.

    compare_predictions.py REFERENCE.jsonl CANDIDATE.jsonl [TOL]
"""
import json
import sys


def rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ref_path, cand_path = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 5e-3
    ref, cand = rows(ref_path), rows(cand_path)
    problems = []
    if len(ref) != len(cand):
        problems.append(f"{len(ref)} rows in {ref_path}, {len(cand)} in {cand_path}")
    worst = 0.0
    for r, c in zip(ref, cand):
        where = f"row {r.get('row')}"
        for key in ("label", "exit_block", "tokens"):
            if r.get(key) != c.get(key):
                problems.append(f"{where}: {key} {r.get(key)} vs {c.get(key)}")
        rl, cl = r.get("logits"), c.get("logits")
        if rl is None or cl is None:
            problems.append(f"{where}: no logits (run batch with --logits)")
            continue
        if len(rl) != len(cl):
            problems.append(f"{where}: {len(rl)} exits computed vs {len(cl)}")
            continue
        for block, (a, b) in enumerate(zip(rl, cl), 1):
            d = max(abs(x - y) for x, y in zip(a, b))
            worst = max(worst, d)
            if d > tol:
                problems.append(f"{where}: block {block} logits differ by {d:.3g} > {tol:g}")
    n = min(len(ref), len(cand))
    print(f"compared {n} rows: labels and exit blocks {'equal' if not problems else 'NOT equal'}; "
          f"max logit difference {worst:.3g} (tolerance {tol:g})")
    for p in problems[:10]:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
