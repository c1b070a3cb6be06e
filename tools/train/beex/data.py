"""TSV loading, tokenization, vocabulary pruning and length-bucketed batches."""
import csv

import numpy as np
import torch


def read_tsv(path):
    """Rows of a `sentence<TAB>label` file with a header line: (texts, labels)."""
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if len(header) < 2:
            raise ValueError(f"{path}: expected a header 'sentence<TAB>label'")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(f"{path}:{lineno}: expected 2 tab-separated fields, got {len(row)}")
            texts.append(row[0])
            labels.append(int(row[1]))
    return texts, labels


def encode_all(tokenizer, texts, max_len):
    return [tokenizer.encode(t, max_len) for t in texts]


def build_tok_map(train_ids, vocab_size, unk_id, keep_ids=(), min_count=1):
    """Vocabulary id -> embedding row. Ids seen in training at least min_count times (and
    keep_ids) get their own row, in id order; every other id shares the [UNK] row."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for ids in train_ids:
        np.add.at(counts, np.asarray(ids, dtype=np.int64), 1)
    keep = counts >= min_count
    keep[list(keep_ids)] = True
    keep[unk_id] = True
    rows = np.cumsum(keep) - 1
    tok_map = np.where(keep, rows, rows[unk_id]).astype(np.int64)
    return torch.from_numpy(tok_map)


def bucketed_batches(lengths, batch_size, rng):
    """Batches of indices with similar lengths (sorted by length, random order within equal
    lengths), in random order: padding stays small while every epoch differs."""
    lengths = np.asarray(lengths)
    perm = rng.permutation(len(lengths))
    order = perm[np.argsort(lengths[perm], kind="stable")]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(seqs, pad_id, word_dropout=0.0, unk_id=None, rng=None):
    """Pad a list of id lists to a [B, T_max] tensor and its mask. Word dropout replaces each
    non-special token ([CLS] first, [SEP] last) with [UNK] with probability word_dropout."""
    t = max(len(s) for s in seqs)
    ids = np.full((len(seqs), t), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), t), dtype=bool)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = True
        if word_dropout > 0 and len(s) > 2:
            drop = rng.random(len(s) - 2) < word_dropout
            ids[i, 1:len(s) - 1][drop] = unk_id
    return torch.from_numpy(ids), torch.from_numpy(mask)
