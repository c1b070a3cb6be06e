"""The lexical n-gram head (docs/MODEL.md, "lexical"): hashed word unigrams and bigrams of the
token ids, a linear model over their presence, added to every exit's logits.

Why: the bag-of-words baseline and the transformer err on different sentences (on SST-2 dev
they disagree on ~150 of 872), so their sum beats both; the head gives the model the baseline's
sparse lexical memory for ~0.5 MB and a microsecond per sentence.

Everything here is defined on the ids as the engine sees them ([CLS] ... [SEP], truncated to
max_len), so the engine computes the same features from ids alone:

  words    a word starts at every id whose continuation bit is 0 (and at the first id) and runs
           over the following ids whose bit is 1 (WordPiece's "##" pieces)
  word key h = FNV-1a over the word's ids as 64-bit integers: h = OFFSET; h = (h ^ id) * PRIME
  features the word keys (unigrams) and, for consecutive words, h_prev * BIGRAM + h (bigrams),
           all mod 2^64
  buckets  b(k) = (k * FIB mod 2^64) >> (64 - bits); a sentence's features are the SET of its
           buckets (a bucket present twice counts once)
  logits   z = scale * sum_{b in set} q[b, :] + bias, q int8: the integer sum is exact, one
           float32 multiply and one add per class (so the engine's result is bit-identical)
"""
import numpy as np
import torch
from torch import nn

OFFSET = np.uint64(0xCBF29CE484222325)
PRIME = np.uint64(0x100000001B3)
BIGRAM = np.uint64(0xC2B2AE3D27D4EB4F)
FIB = np.uint64(0x9E3779B97F4A7C15)


def continuation_words(vocab):
    """The int32 bitmap [ceil(V / 32)]: bit (id mod 32) of word id // 32 set for '##' pieces."""
    V = len(vocab)
    bits = np.zeros((V + 31) // 32, dtype=np.uint32)
    for i, token in enumerate(vocab):
        if token.startswith("##"):
            bits[i >> 5] |= np.uint32(1) << np.uint32(i & 31)
    return bits.view(np.int32)


def buckets(ids, continues, bits):
    """The sorted unique buckets of one id sequence (numpy int64). continues: the int32 bitmap."""
    cont = continues.view(np.uint32)
    keys = []
    h = None
    with np.errstate(over="ignore"):
        for i in ids:
            i = int(i)
            if h is not None and (cont[i >> 5] >> np.uint32(i & 31)) & np.uint32(1):
                h = (h ^ np.uint64(i)) * PRIME
                continue
            if h is not None:
                keys.append(h)
            h = (OFFSET ^ np.uint64(i)) * PRIME
        if h is not None:
            keys.append(h)
        w = np.asarray(keys, dtype=np.uint64)
        feats = np.concatenate([w, w[:-1] * BIGRAM + w[1:]])
        return np.unique((feats * FIB) >> np.uint64(64 - bits)).astype(np.int64)


def sparse_rows(seqs, continues, bits):
    """(flat bucket indices, per-row counts) of many id sequences: the layout of baseline_bow.fit."""
    rows = [buckets(s, continues, bits) for s in seqs]
    return np.concatenate(rows), np.array([len(r) for r in rows], dtype=np.int64)


def quantize(W, b):
    """int8 table, float32 scale and float32 bias of a float table W [B, C] and bias b [C]:
    symmetric, one scale for the table (s = max|W| / 127)."""
    s = np.float32(max(float(np.abs(W).max()), 1e-12) / 127.0)
    q = np.clip(np.rint(W / s), -127, 127).astype(np.int8)
    return q, np.array([s], dtype=np.float32), np.asarray(b, dtype=np.float32)


class LexicalHead(nn.Module):
    """z [N, C] from ids [N, T] and mask [N, T] (the formula of the module docstring). Buffers
    (the file's tensors): weight int8 [2^bits, C], scale float32 [1], bias float32 [C],
    continues int32 [ceil(V / 32)]."""

    def __init__(self, bits, vocab_size, n_classes):
        super().__init__()
        if not 8 <= bits <= 24:
            raise ValueError(f"lexical bits must be 8..24, got {bits}")
        self.bits = bits
        self.register_buffer("weight", torch.zeros(1 << bits, n_classes, dtype=torch.int8))
        self.register_buffer("scale", torch.ones(1, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(n_classes, dtype=torch.float32))
        self.register_buffer("continues", torch.zeros((vocab_size + 31) // 32, dtype=torch.int32))

    def forward(self, ids, mask):
        cont = self.continues.numpy()
        q = self.weight.numpy().astype(np.int64)
        ids_np, mask_np = ids.numpy(), mask.numpy()
        sums = np.stack([q[buckets(row[m], cont, self.bits)].sum(axis=0) for row, m in zip(ids_np, mask_np)])
        # the integer sums are exact (|sum| <= 127 * 2T << 2^24), so float32(sum) * s + b rounds twice, as the engine
        return torch.from_numpy(sums.astype(np.float32)) * self.scale + self.bias
