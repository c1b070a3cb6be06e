"""Export an FP32 BEExformer (docs/MODEL.md, weight_bits = 32) to ONNX: the peer the bench runs in
ONNX Runtime (bench/BinEngine.Bench -- peer, issue 11).

    /usr/bin/python3 tools/train/export_onnx.py [--model models/sst2-fp32-twin] [--out bench/peer/sst2-fp32-twin.onnx]
        [--blocks N]

--blocks N exports the twin's first N blocks and their exits only: the FP32 peer of an N-block model
(a binarized model with fewer blocks than the twin is compared with ORT running as many blocks, not
the twin's full depth; exit N of the twin is its static-depth-N answer, see the twin's recalibrate.py
curve). Output then [N, batch, n_classes].

Graph: inputs `input_ids` [batch, seq] int64 and `attention_mask` [batch, seq] int64 (1 = real token,
0 = padding), both axes dynamic; output `logits` [n_layers, batch, n_classes] float32, the logits of
every exit (the last row is the full-depth answer; ORT computes all exits, whose heads cost 0.01 %
of a pass). opset 17, torch.onnx.export (TorchScript exporter of torch 1.13, which does not need the
`onnx` Python package: without it the checker is skipped, and this script checks the graph the way
that matters instead, by running it, see below).

The graph is the reference model's forward pass with the padding mask always applied (the
reference skips the mask when a batch has no padding, a data-dependent branch that tracing would
freeze), so one graph serves padded batches and single sentences alike.

Checks (max abs difference printed and asserted < 1e-4): the module that is traced against the
eager reference model, on single sentences and on a padded batch; the exported file in ONNX
Runtime against the same, when the `onnxruntime` Python package is present (Debian has none).
The bench (`peer`) then runs the file in ONNX Runtime on the ids of the model's golden.json and
asserts its logits against the PyTorch logits stored there, one by one and as a padded batch.
"""
import argparse
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from beex.export import load_model_dir  # noqa: E402
from beex.model import BEExformer  # noqa: E402
from beex.train import set_threads  # noqa: E402

TOLERANCE = 1e-4


class OnnxPeer(nn.Module):
    """The FP32 reference forward pass with an explicit int64 attention mask, every exit's logits."""

    def __init__(self, model: BEExformer, blocks=None):
        super().__init__()
        self.blocks = model.cfg["n_layers"] if blocks is None else blocks
        if not 1 <= self.blocks <= model.cfg["n_layers"]:
            raise ValueError(f"blocks must be in 1..{model.cfg['n_layers']}, got {blocks}")
        if model.cfg["weight_bits"] != 32 or model.cfg["act_bits"] != 32 or model.cfg["emb_bits"] != 32:
            raise ValueError("export_onnx exports the FP32 model (weight_bits = act_bits = emb_bits = 32)")
        self.m = model

    def forward(self, input_ids, attention_mask):
        m = self.m
        emb = m.embed
        rows = input_ids if emb.tok_map is None else emb.tok_map[input_ids]
        t = input_ids.shape[1]
        x = emb.ln(emb.tok.weight[rows] + emb.pos.weight[:t])
        w = attention_mask.to(x.dtype).unsqueeze(-1)
        count = w.sum(dim=1)
        key_pad = attention_mask == 0
        out = []
        for i, (block, head) in enumerate(zip(m.blocks[:self.blocks], m.exits[:self.blocks])):
            x = self._block(block, x, key_pad)
            pooled = (x * w).sum(dim=1) / count
            z = head(pooled)
            # exit_temperatures (docs/MODEL.md, Exits): exit i returns z_i / T_i, as the reference does
            out.append(z if m.temperatures is None else z / float(m.temperatures[i]))
        return torch.stack(out)

    def _block(self, block, x, key_pad):
        a = block.attn
        b, t, d = x.shape[0], x.shape[1], self.m.cfg["d_model"]
        dh = d // a.h
        q = torch.nn.functional.linear(x, a.q.weight, a.q.bias).view(b, t, a.h, dh).transpose(1, 2)
        k = torch.nn.functional.linear(x, a.k.weight, a.k.bias).view(b, t, a.h, dh).transpose(1, 2)
        v = torch.nn.functional.linear(x, a.v.weight, a.v.bias).view(b, t, a.h, dh).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)
        scores = scores.masked_fill(key_pad[:, None, None, :], float("-inf"))
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, t, d)
        h = block.ln1(x + torch.nn.functional.linear(ctx, a.o.weight, a.o.bias))
        s = block.slfn
        lin = torch.nn.functional.linear
        g = torch.sigmoid(lin(h, s.g1.weight, s.g1.bias))
        if s.gate_center:  # slfn_gate_center: G2 sees sigma(G1 h) - 1/2
            g = g - 0.5
        f = torch.tanh(lin(h, s.f1.weight, s.f1.bias))
        return block.ln2(h + lin(g, s.g2.weight, s.g2.bias) * lin(f, s.f2.weight, s.f2.bias))


def sample_inputs(cfg, seed=0):
    """Single sentences of several lengths and one padded batch, as (ids, mask, lengths)."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n in (2, 7, 25, cfg["max_len"]):
        ids = torch.randint(1000, cfg["vocab_size"], (1, n), generator=g)
        ids[0, 0], ids[0, -1] = 101, 102
        cases.append((ids, torch.ones_like(ids), [n]))
    lengths = [3, 17, 40, 9]
    t = max(lengths)
    ids = torch.zeros(len(lengths), t, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(1000, cfg["vocab_size"], (n,), generator=g)
        ids[i, 0], ids[i, n - 1] = 101, 102
        mask[i, :n] = 1
    cases.append((ids, mask, lengths))
    return cases


@torch.no_grad()
def max_diff_vs_reference(model, run, cases, blocks):
    """Max |run(ids, mask) - reference's first `blocks` exits| over the cases; the reference runs each
    sentence alone, unpadded."""
    worst = 0.0
    for ids, mask, lengths in cases:
        got = run(ids, mask)  # [L, B, C]
        for i, n in enumerate(lengths):
            ref = model(ids[i:i + 1, :n])[:blocks, 0, :]
            worst = max(worst, float((got[:, i, :] - ref).abs().max()))
    return worst


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(root, "models", "sst2-fp32-twin"))
    ap.add_argument("--out", default=os.path.join(root, "bench", "peer", "sst2-fp32-twin.onnx"))
    ap.add_argument("--blocks", type=int, help="export the first N blocks and exits (default: all)")
    args = ap.parse_args()

    set_threads(1)
    model, cfg = load_model_dir(args.model)
    peer = OnnxPeer(model, args.blocks).eval()
    cases = sample_inputs(cfg)

    eager = max_diff_vs_reference(model, lambda i, m: peer(i, m), cases, peer.blocks)
    print(f"eager peer vs reference: max abs diff {eager:.3g}")
    assert eager < TOLERANCE, f"the peer graph's module differs from the reference by {eager}"

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ids, mask, _ = cases[-1]
    tmp = args.out + ".tmp"
    with torch.no_grad():
        torch.onnx.export(
            peer, (ids, mask), tmp, opset_version=17, do_constant_folding=True,
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "logits": {1: "batch"}})

    try:
        import onnxruntime as ort  # optional: Debian has no package for it; the bench checks in ORT itself
    except ImportError:
        ort = None
    if ort is not None:
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = max_diff_vs_reference(model, lambda i, m: torch.from_numpy(
            sess.run(None, {"input_ids": i.numpy(), "attention_mask": m.numpy()})[0]), cases, peer.blocks)
        print(f"onnxruntime (python) vs reference: max abs diff {got:.3g}")
        assert got < TOLERANCE, f"ONNX Runtime differs from the reference by {got}"
    else:
        print("onnxruntime (python) not installed: the bench checks ORT against the PyTorch logits of golden.json")

    os.replace(tmp, args.out)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({size / 1e6:.1f} MB, opset 17, inputs input_ids/attention_mask int64 [batch, sequence], "
          f"output logits [{peer.blocks}, batch, {cfg['n_classes']}])")


if __name__ == "__main__":
    main()
