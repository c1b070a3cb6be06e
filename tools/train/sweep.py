#!/usr/bin/python3
"""Dev accuracy and mean blocks of an exported model under each policy over a grid of thresholds:

    /usr/bin/python3 tools/train/sweep.py models/sst2-default
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from beex.data import encode_all, read_tsv  # noqa: E402
from beex.export import load_model_dir  # noqa: E402
from beex.policies import evaluate_policy  # noqa: E402
from beex.tokenizer import WordPieceTokenizer  # noqa: E402
from beex.train import exit_accuracies, predict_all, repo_path, set_threads  # noqa: E402


def main():
    set_threads(1)
    model_dir = sys.argv[1]
    dev = sys.argv[2] if len(sys.argv) > 2 else "data/sst2/dev.tsv"
    model, cfg = load_model_dir(repo_path(model_dir))
    tok = WordPieceTokenizer(repo_path("data/vocab/bert-base-uncased-vocab.txt"))
    texts, labels = read_tsv(repo_path(dev))
    logits = predict_all(model, encode_all(tok, texts, cfg["max_len"]), tok.pad_id)
    print("per-exit dev acc:", " ".join(f"{100 * a:.2f}" for a in exit_accuracies(logits, labels)))
    print("| policy | params | dev acc | mean blocks |\n|---|---|---|---|")
    grid = [("entropy_reduction", {"tau": t, "kappa": k}) for t, k in
            [(0.05, 0.3), (0.1, 0.5), (0.2, 0.5), (0.3, 0.6), (0.5, 0.7), (1.0, 0.5), (1.0, 0.8), (1.0, 1.0)]]
    grid += [("normalized_entropy", {"tau": t}) for t in (0.2, 0.4, 0.6, 0.8)]
    grid += [("confidence", {"tau": t}) for t in (0.7, 0.8, 0.9, 0.95)]
    grid += [("patience", {"t": t}) for t in (1, 2, 3)]
    grid += [(name, params) for name, params in cfg.get("thresholds", {}).items()]
    for name, params in grid:
        acc, blocks, _ = evaluate_policy(name, params, logits, labels)
        print(f"| {name} | {params} | {100 * acc:.2f} | {blocks:.2f} |")


if __name__ == "__main__":
    main()
