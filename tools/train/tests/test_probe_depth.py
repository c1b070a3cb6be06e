"""probe_depth.py's features are what the exits read (train_controllers.precompute's pooled states, whose own test
checks them against the model's forward pass), and the lexical logits it derives from exit 1 are the head's own, for a
model without a lexical head and one with."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from probe_depth import pooled_states  # noqa: E402
from beex.data import collate, read_tsv  # noqa: E402
from beex.export import load_model_dir, sample_outputs  # noqa: E402
from beex.train import repo_path  # noqa: E402
from beex.tokenizer import WordPieceTokenizer  # noqa: E402


@pytest.mark.parametrize("model_dir", ["models/tiny-smoke", "models/sst2-default"])
def test_pooled_states_and_lexical_logits_are_the_exits_inputs(model_dir):
    model, cfg = load_model_dir(repo_path(model_dir))
    model.set_temperatures(None)
    tok = WordPieceTokenizer(repo_path("data/vocab/bert-base-uncased-vocab.txt"), lowercase=cfg.get("lowercase", True))
    texts, _ = read_tsv(repo_path("data/sst2/dev.tsv"))
    seqs = [tok.encode(texts[i], cfg["max_len"]) for i in (4, 0, 11, 2)]  # lengths out of order: batched by length
    states, lex, logits = pooled_states(model, seqs, tok.vocab["[PAD]"])
    assert states.shape == (len(seqs), cfg["n_layers"], cfg["d_model"])
    assert bool(lex.abs().sum() > 0) == ("lexical" in cfg)
    ids, mask = collate(seqs, tok.vocab["[PAD]"])
    with torch.no_grad():
        head = model.lexical_logits(ids, mask)
    if head is not None:
        torch.testing.assert_close(lex, head, rtol=0, atol=1e-5)  # derived from exit 1's logits: float32 rounding
    for n, sample in enumerate(seqs):
        own = torch.as_tensor(sample_outputs(model, sample))
        for k in range(cfg["n_layers"]):
            with torch.no_grad():
                z = model.exits[k](states[n, k]) + lex[n]
            torch.testing.assert_close(z, own[k], rtol=0, atol=2e-5)  # padding masked: rounding only
            torch.testing.assert_close(logits[n, k], own[k], rtol=0, atol=2e-5)


def test_pooled_states_refuses_a_model_with_temperatures():
    model, cfg = load_model_dir(repo_path("models/tiny-smoke"))
    model.set_temperatures([2.0] * cfg["n_layers"])
    with pytest.raises(ValueError, match="temperatures"):
        pooled_states(model, [[101, 2000, 102]], 0)
