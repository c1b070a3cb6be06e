#!/usr/bin/python3
"""The teacher cache that `train.distill_teacher` reads: one exported model's final-exit logits
for every row of a training file, in file order.

    /usr/bin/python3 tools/train/cache_teacher.py models/sst2-default data/sst2/train.tsv \
        tools/train/runs/teacher-sst2-default.pt

Writes a float32 tensor [N_rows, C]. The logits are the model's own (its stored exit
temperature applied, if it has one: the softened target is then the calibrated probability the
engine reports, not a train-set overconfident one). The trainer indexes the cache by the row
numbers of the train file (after train_limit and the TREC holdout), so the cache is of the whole
file, never of a selection.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from beex.data import encode_all, read_tsv  # noqa: E402
from beex.export import load_model_dir  # noqa: E402
from beex.tokenizer import WordPieceTokenizer  # noqa: E402
from beex.train import predict_all, repo_path, set_threads  # noqa: E402


def teacher_logits(model_dir, train_tsv, vocab="data/vocab/bert-base-uncased-vocab.txt", threads=1):
    """[N, C] float32: the final exit's logits of the model in model_dir for every row of train_tsv."""
    set_threads(threads)
    model, cfg = load_model_dir(repo_path(model_dir))
    tok = WordPieceTokenizer(repo_path(vocab), lowercase=cfg.get("lowercase", True))
    texts, labels = read_tsv(repo_path(train_tsv))
    ids = encode_all(tok, texts, cfg["max_len"])
    with torch.no_grad():
        logits = predict_all(model, ids, tok.pad_id, batch_size=256)  # [N, L, C]
    return torch.from_numpy(logits[:, -1].copy()), labels


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("train_tsv")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()
    logits, labels = teacher_logits(args.model_dir, args.train_tsv, threads=args.threads)
    acc = float((logits.argmax(-1) == torch.tensor(labels)).float().mean())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(logits, args.out)
    print(f"{args.out}: {tuple(logits.shape)} final-exit logits of {args.model_dir} "
          f"(train accuracy {100 * acc:.2f} %) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
