"""The WordPiece tokenizer against reference ids (tests/fixtures/wordpiece, bert-base-uncased)."""
import json
import os

from beex.tokenizer import WordPieceTokenizer
from conftest import REPO


def test_matches_reference_ids():
    tok = WordPieceTokenizer(os.path.join(REPO, "data", "vocab", "bert-base-uncased-vocab.txt"))
    path = os.path.join(REPO, "tests", "fixtures", "wordpiece", "bert-base-uncased.jsonl")
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            assert tok.encode(row["text"], 10 ** 6) == row["ids"], row["text"]
            n += 1
    assert n > 100


def test_truncation_keeps_cls_and_sep():
    tok = WordPieceTokenizer(os.path.join(REPO, "data", "vocab", "bert-base-uncased-vocab.txt"))
    ids = tok.encode("word " * 100, 8)
    assert len(ids) == 8 and ids[0] == tok.cls_id and ids[-1] == tok.sep_id
