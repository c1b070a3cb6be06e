"""The distillation cache (cache_teacher.py) and the row numbers the trainer indexes it with."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cache_teacher import teacher_logits  # noqa: E402
from beex.data import read_tsv  # noqa: E402
from beex.export import load_model_dir, sample_outputs  # noqa: E402
from beex.train import TRAIN_DEFAULTS, load_splits, repo_path  # noqa: E402
from beex.tokenizer import WordPieceTokenizer  # noqa: E402


def test_cache_is_the_final_exit_of_every_row_in_file_order(tmp_path):
    texts, labels = read_tsv(repo_path("data/sst2/dev.tsv"))
    tsv = tmp_path / "rows.tsv"
    # lengths out of order on purpose: the cache is batched by length and must come back in file order
    rows = [3, 0, 17, 5, 9]
    tsv.write_text("sentence\tlabel\n" + "".join(f"{texts[i]}\t{labels[i]}\n" for i in rows), encoding="utf-8")
    logits, got_labels = teacher_logits("models/tiny-smoke", str(tsv))
    assert logits.shape == (len(rows), 2) and logits.dtype == torch.float32
    assert got_labels == [labels[i] for i in rows]
    model, cfg = load_model_dir(repo_path("models/tiny-smoke"))
    tok = WordPieceTokenizer(repo_path("data/vocab/bert-base-uncased-vocab.txt"), lowercase=cfg.get("lowercase", True))
    for k, i in enumerate(rows):
        one = sample_outputs(model, tok.encode(texts[i], cfg["max_len"]))[-1]
        np.testing.assert_allclose(logits[k].numpy(), one, rtol=0, atol=1e-5)  # padding is masked: rounding only


def test_train_rows_number_the_kept_rows_after_limit_and_holdout():
    train = dict(TRAIN_DEFAULTS, train_limit=600)
    cfg = {"model": {"max_len": 32}, "train": train,
           "data": {"train": "data/trec/train.tsv", "dev": "data/trec/test.tsv", "holdout": 100,
                    "vocab": "data/vocab/bert-base-uncased-vocab.txt"}}
    data = load_splits(cfg, lambda *_: None)
    texts, labels = read_tsv(repo_path("data/trec/train.tsv"))
    assert len(data.train_rows) == len(data.tr_ids) == 500
    for k in (0, 123, 499):
        row = int(data.train_rows[k])
        assert data.tr_ids[k] == data.tok.encode(texts[row], 32) and data.tr_labels[k] == labels[row]
