"""The lexical n-gram head (docs/MODEL.md, lexical): the features the engine computes (the same cases as the C#
LexicalHeadTests), each bucket once, the head added to every exit before its temperature, and the export round trip."""
import numpy as np
import torch

from beex import lexical as X
from beex.export import load_model_dir, state_tensors
from beex import safetensors_io
from beex.model import BEExformer
from conftest import tiny_cfg


def vocab40():
    v = [f"t{i}" for i in range(40)]
    v[7], v[9], v[33] = "##a", "##b", "##c"
    return v


def test_continuation_bitmap_and_buckets():
    c = X.continuation_words(vocab40())
    assert list(c.view(np.uint32)) == [(1 << 7) | (1 << 9), 1 << 1]
    # words [1] [5 7 9] [3] [5 7 9] [2]: 4 distinct unigrams + 4 distinct bigrams (LexicalHeadTests has the same numbers)
    assert list(X.buckets([1, 5, 7, 9, 3, 5, 7, 9, 2], c, 12)) == [54, 140, 275, 465, 1252, 1808, 3367, 3923]
    assert list(X.buckets([33, 33, 4], c, 12)) == [397, 2568, 3619]
    # a word's pieces hash together: [5 7] differs from [5] [7]-as-a-word only through the bitmap
    assert len(X.buckets([5, 7], c, 12)) == 1 and len(X.buckets([5, 8], c, 12)) == 3


def test_head_sums_each_bucket_once_and_every_exit_adds_it():
    cfg = tiny_cfg(vocab_size=40, n_classes=2, lexical={"bits": 12})
    torch.manual_seed(0)
    model = BEExformer(cfg).eval()
    q = torch.randint(-127, 128, (1 << 12, 2), dtype=torch.int8)
    model.lexical.weight.copy_(q)
    model.lexical.scale.fill_(0.125)
    model.lexical.bias.copy_(torch.tensor([0.5, -0.5]))
    model.lexical.continues.copy_(torch.from_numpy(X.continuation_words(vocab40())))
    ids = torch.tensor([[1, 5, 7, 9, 3, 5, 7, 9, 2]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    expect = q[[54, 140, 275, 465, 1252, 1808, 3367, 3923]].long().sum(0).float() * 0.125 + torch.tensor([0.5, -0.5])
    lex = model.lexical(ids, mask)[0]
    assert torch.equal(lex, expect)
    with torch.no_grad():
        with_head = model(ids)
        head, model.lexical = model.lexical, None
        without = model(ids)
        model.lexical = head
    assert torch.allclose(with_head - without, lex.expand_as(with_head), atol=1e-5)
    # padding is not a token: the padded row gives the same head output
    padded = torch.tensor([[1, 5, 7, 9, 3, 5, 7, 9, 2, 0, 0]])
    pmask = torch.tensor([[True] * 9 + [False] * 2])
    assert torch.equal(model.lexical(padded, pmask)[0], lex)


def test_export_round_trip_keeps_the_head(tmp_path):
    cfg = tiny_cfg(vocab_size=40, n_classes=2, lexical={"bits": 10})
    model = BEExformer(cfg).eval()
    model.lexical.weight.copy_(torch.randint(-127, 128, (1 << 10, 2), dtype=torch.int8))
    t = state_tensors(model)
    assert t["lexical.weight"].dtype == torch.int8 and t["lexical.continues"].dtype == torch.int32
    import json
    safetensors_io.save(t, str(tmp_path / "model.safetensors"), metadata={"config": json.dumps(model.cfg)})
    again, cfg2 = load_model_dir(str(tmp_path))
    assert cfg2["lexical"] == {"bits": 10}
    ids = torch.tensor([[1, 2, 3, 7]])
    with torch.no_grad():
        assert torch.equal(again(ids), model(ids))


def test_cache_folds_group_a_sentence_with_its_phrases():
    """cache_lexical.py draws folds by source sentence: every phrase goes to the longest row containing it as whole
    words, so no fold scores a phrase with a head fitted on its own sentence."""
    from cache_lexical import sentence_groups
    rows = ["a fine film ", "fine film", "a fine", "film", "the worst plot ever", "worst plot", "fine", "an odd one",
            "fin"]  # "fin" is inside "fine" as characters, not as a word: its own group
    g = sentence_groups(rows)
    assert g[0] == g[1] == g[2] == g[3] == g[6]
    assert g[4] == g[5] and g[4] != g[0]
    assert len({g[0], g[4], g[7], g[8]}) == 4
