#!/usr/bin/python3
"""Does depth carry information block 1 does not? A diagnostic for issue 12's "depth that pays".

    /usr/bin/python3 tools/train/probe_depth.py models/sst2-default [--train-rows N] [--threads 2]

With the backbone FROZEN, fits logistic-regression probes on the exits' pooled states m_i (the mean of block i's
output rows, what exit i reads) over the training split and scores them on dev:

    block k alone:       z = W m_k + c            (k = 1 … L; the model's own exit k is one such linear map)
    all blocks at once:  z = W [m_1, …, m_L] + c  (every block's features side by side)

each alone, with the model's lexical head z_lex (its logits as shipped) added afterwards, and fitted with z_lex as a
fixed offset. If the probe over all blocks scores no better than the probe over block 1, the later blocks' features
add no linearly decodable information to block 1's: no exit rule, head or exit-loss weighting on this backbone can
make depth pay, only a backbone that learns more. L2 strength chosen on dev per probe (in-sample, as every choice
here); LBFGS on the full batch. Prints a table; writes nothing.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from beex.data import encode_all, read_tsv  # noqa: E402
from beex.export import load_model_dir  # noqa: E402
from beex.tokenizer import WordPieceTokenizer  # noqa: E402
from beex.train import repo_path, set_threads  # noqa: E402
from train_controllers import precompute  # noqa: E402

VOCAB = "data/vocab/bert-base-uncased-vocab.txt"
L2_GRID = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


@torch.no_grad()
def pooled_states(model, seqs, pad_id):
    """[N, L, d] pooled state after every block (train_controllers.precompute's, without m_0), [N, C] the lexical
    head's logits (zeros without a head) and [N, L, C] every exit's logits, input order. Without temperatures
    precompute's exit k logits are E_k m_k + c_k + z_lex, so z_lex is exit 1's logits less its head's (to float32
    rounding); with them that subtraction would be wrong, hence the check."""
    if model.temperatures is not None:
        raise ValueError("pooled_states needs the exit temperatures unset (model.set_temperatures(None))")
    pooled, logits = precompute(model, seqs, pad_id)
    states, logits = torch.from_numpy(pooled[:, 1:]), torch.from_numpy(logits)
    lex = logits[:, 0] - model.exits[0](states[:, 0]) if model.lexical is not None else torch.zeros_like(logits[:, 0])
    return states, lex, logits


def fit_probe(xtr, ytr, otr, l2, steps=200):
    """Multinomial logistic regression W, c on standardized features with a fixed logit offset, by LBFGS."""
    k, C = xtr.shape[1], otr.shape[1]
    W = torch.zeros(k, C, requires_grad=True)
    c = torch.zeros(C, requires_grad=True)
    opt = torch.optim.LBFGS([W, c], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ W + c + otr, ytr) + l2 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach(), c.detach()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--train", default="data/sst2/train.tsv")
    ap.add_argument("--dev", default="data/sst2/dev.tsv")
    ap.add_argument("--train-rows", type=int, default=0, help="training rows used (a seeded sample; 0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(0)
    model, cfg = load_model_dir(repo_path(args.model_dir))
    model.set_temperatures(None)
    tok = WordPieceTokenizer(repo_path(VOCAB), lowercase=cfg.get("lowercase", True))
    tr, trl = read_tsv(repo_path(args.train))
    dv, dvl = read_tsv(repo_path(args.dev))
    if 0 < args.train_rows < len(tr):
        pick = np.random.default_rng(0).choice(len(tr), args.train_rows, replace=False)
        tr, trl = [tr[i] for i in pick], [trl[i] for i in pick]
    t0 = time.time()
    pad = tok.vocab["[PAD]"]
    s_tr, lex_tr, _ = pooled_states(model, encode_all(tok, tr, cfg["max_len"]), pad)
    s_dv, lex_dv, own_dv = pooled_states(model, encode_all(tok, dv, cfg["max_len"]), pad)
    ytr, ydv = torch.as_tensor(trl), torch.as_tensor(dvl)
    L = cfg["n_layers"]
    print(f"{args.model_dir}: pooled states of {len(tr)} training and {len(dv)} dev rows in {time.time() - t0:.0f} s")

    # The model's own exits, for reference (raw logits, no temperature).
    own = [float((own_dv[:, i].argmax(1) == ydv).float().mean()) for i in range(L)]
    print("model's own exits, dev: " + " ".join(f"{a * 100:.2f}" for a in own))

    probes = [(f"block {k + 1}", [k]) for k in range(L)] + [("all blocks", list(range(L)))]
    print("| probe | dev acc, backbone alone (L2) | the same probe + the lexical head | probe fitted with the head as offset (L2) |")
    print("|---|---|---|---|")
    zero_tr, zero_dv = torch.zeros_like(lex_tr), torch.zeros_like(lex_dv)
    for name, blocks in probes:
        xtr, xdv = s_tr[:, blocks].reshape(len(tr), -1), s_dv[:, blocks].reshape(len(dv), -1)
        mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
        xtr, xdv = (xtr - mu) / sd, (xdv - mu) / sd
        # Alone, and with the head added afterwards (as the shipped models are built: exits trained without it);
        # then fitted with the head as an offset, which reads the head's training-set logits (far surer there than on
        # dev: tools/train/README.md, stacking) and so learns to lean on it.
        alone = [(l2, fit_probe(xtr, ytr, zero_tr, l2)) for l2 in L2_GRID]
        acc = lambda W, c, odv: float(((xdv @ W + c + odv).argmax(1) == ydv).float().mean())  # noqa: E731
        a_alone = max((acc(W, c, zero_dv), l2) for l2, (W, c) in alone)
        a_after = max((acc(W, c, lex_dv), l2) for l2, (W, c) in alone)
        a_offset = max((acc(*fit_probe(xtr, ytr, lex_tr, l2), lex_dv), l2) for l2 in L2_GRID)
        print(f"| {name} | {a_alone[0] * 100:.2f} ({a_alone[1]:g}) | {a_after[0] * 100:.2f} ({a_after[1]:g}) | "
              f"{a_offset[0] * 100:.2f} ({a_offset[1]:g}) |", flush=True)

if __name__ == "__main__":
    main()
