"""SmartBERT skip gates (docs/MODEL.md, `skip_gates`): tensor names, hard-skip semantics, the
last block never skipped, padded batch == one by one, policy replay over the blocks that ran,
and an export -> re-import round trip of the golden file."""
import json
import os

import numpy as np
import torch

from beex.data import collate
from beex.smartbert import (SmartBERT, evaluate_policy_skip, exits_with_skips, export_smart, load_smart_dir,
                            predict_all_skip, reference_path, round_weights_to_f16)
from beex.tokenizer import WordPieceTokenizer
from conftest import REPO, tiny_cfg
from test_model_export import contract_names

VOCAB = os.path.join(REPO, "data", "vocab", "bert-base-uncased-vocab.txt")


def make(seed=0, L=4, hidden=8, **over):
    torch.manual_seed(seed)
    m = SmartBERT(tiny_cfg(n_layers=L, **over), skip_hidden=hidden, rho=0.5)
    m.eval()
    return m


def set_gate(m, i, skip):
    """Gate i constant: g = sigmoid(+-8) regardless of the state."""
    with torch.no_grad():
        m.skip[i][1].weight.zero_()
        m.skip[i][1].bias.fill_(8.0 if skip else -8.0)


def rand_ids(rng, n):
    return [101] + [int(v) for v in rng.integers(1000, 30000, size=n - 2)] + [102]


def test_names_round_trip():
    L, H = 4, 8
    m = make(L=L, hidden=H)
    sd = {k: v for k, v in m.state_dict().items() if v is not None}
    skip = set()
    for i in range(L - 1):
        skip |= {f"skip.{i}.0.weight", f"skip.{i}.0.bias", f"skip.{i}.1.weight", f"skip.{i}.1.bias"}
    assert set(sd) == contract_names(L, False) | skip
    d = m.cfg["d_model"]
    assert sd["skip.0.0.weight"].shape == (H, d) and sd["skip.0.0.bias"].shape == (H,)
    assert sd["skip.2.1.weight"].shape == (1, H) and sd["skip.2.1.bias"].shape == (1,)
    assert m.cfg["skip_gates"] == {"hidden": H, "rho": 0.5}
    m2 = SmartBERT(dict(m.cfg))
    m2.load_state_dict(sd)
    assert all(torch.equal(v, m2.state_dict()[k]) for k, v in sd.items())


def test_hard_skip_leaves_state_unchanged_and_no_exit_row():
    m = make(L=4)
    for i, s in enumerate([False, True, False]):
        set_gate(m, i, s)
    ids = rand_ids(np.random.default_rng(1), 9)
    blocks_run, gates, logits, H = reference_path(m, ids)
    assert blocks_run == [1, 3, 4] and logits.shape == (3, 3) and H.shape == (3,)
    assert len(gates) == 3 and gates[1] > 0.5 > gates[0]
    # block 2 skipped: block 3 sees block 1's output; exit rows are those of blocks 1, 3, 4
    x = m.embed(torch.tensor([ids]))
    with torch.no_grad():
        x1 = m.blocks[0](x, None)
        x3 = m.blocks[2](x1, None)
        z3 = m.exits[2](x3.mean(1))[0].numpy()
    np.testing.assert_allclose(logits[1], z3, rtol=1e-5, atol=1e-6)
    # the batched forward marks block 2 as not run and carries the state through unchanged
    with torch.no_grad():
        lg, aux = m(torch.tensor([ids]), gates="hard", return_aux=True)
    assert aux["ran"][:, 0].tolist() == [True, False, True, True]
    torch.testing.assert_close(aux["pooled"][1], aux["pooled"][0])
    # a gate exactly at rho skips (g >= rho)
    with torch.no_grad():
        m.skip[0][1].bias.fill_(0.0)
    assert reference_path(m, ids)[0] == [3, 4]  # g = sigmoid(0) = 0.5: blocks 1 and 2 skipped


def test_last_block_never_skipped():
    m = make(L=3)
    for i in range(2):
        set_gate(m, i, True)
    ids = rand_ids(np.random.default_rng(2), 7)
    blocks_run, gates, logits, _ = reference_path(m, ids)
    assert blocks_run == [3] and len(gates) == 2 and logits.shape[0] == 1
    with torch.no_grad():
        lg, aux = m(torch.tensor([ids]), gates="hard", return_aux=True)
    assert aux["ran"][:, 0].tolist() == [False, False, True]
    np.testing.assert_allclose(lg[-1, 0].numpy(), logits[0], rtol=1e-5, atol=1e-6)
    assert len(m.skip) == 2  # no gate before the last block


def test_padded_batch_equals_one_by_one():
    # float64, as tests/test_model_export.py's padding test: in float32 batched and single
    # products round differently and can flip an 8-bit activation code.
    m = make(seed=3, L=4).double()
    with torch.no_grad():
        for gate in m.skip:  # a gate that depends on the pooled state, skipping about half
            gate[0].weight.normal_(0, 2.0)
            gate[1].weight.normal_(0, 2.0)
            gate[1].bias.zero_()
    rng = np.random.default_rng(4)
    seqs = [rand_ids(rng, n) for n in (3, 9, 16, 5, 12, 7, 14, 4)]
    ids, mask = collate(seqs, 0)
    with torch.no_grad():
        lg, aux = m(ids, mask, gates="hard", return_aux=True)
    patterns = set()
    for b, s in enumerate(seqs):
        blocks_run, gates, logits, _ = reference_path(m, s)
        ran = aux["ran"][:, b].numpy()
        assert list(np.nonzero(ran)[0] + 1) == blocks_run
        np.testing.assert_allclose(aux["g"][:, b].numpy(), gates, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(lg[ran, b].numpy(), logits, rtol=1e-9, atol=1e-12)
        patterns.add(tuple(blocks_run))
    assert len(patterns) > 1  # the batch really mixes samples that skip different blocks


def test_policy_replay_uses_only_blocks_that_ran():
    # sample 0 ran blocks 1, 3, 4: exit 2's sure logits must be ignored; sample 1 ran every block
    sure, unsure = [5.0, -5.0], [0.1, 0.0]
    logits = np.array([[unsure, sure, unsure, unsure], [unsure, sure, unsure, unsure]], dtype=np.float32)
    ran = np.array([[1, 0, 1, 1], [1, 1, 1, 1]], dtype=bool)
    eb, used = exits_with_skips("entropy", {"tau": 0.1}, logits, ran)
    assert eb.tolist() == [4, 2] and used.tolist() == [3, 2]
    acc, blocks, mean_exit, _ = evaluate_policy_skip("none", {}, logits, ran, [0, 0])
    assert blocks == 3.5 and mean_exit == 4.0


def test_export_golden_round_trip(tmp_path):
    m = make(seed=5, L=3, act_bits=8)
    set_gate(m, 1, True)
    round_weights_to_f16(m)
    tok = WordPieceTokenizer(VOCAB)
    texts = ["a fine film", "dull and far too long , with nothing to say"]
    cfg, golden = export_smart(m, str(tmp_path), {"thresholds": {"entropy": {"tau": 0.5}}}, tok, texts, [1, 0])
    assert cfg["skip_gates"] == {"hidden": 8, "rho": 0.5}
    m2, cfg2 = load_smart_dir(str(tmp_path))
    with open(tmp_path / "golden.json") as f:
        g = json.load(f)
    for s in g["samples"]:
        assert s["blocks_run"] == [1, 3] and len(s["skip_gates"]) == 2
        assert len(s["logits"]) == len(s["entropies"]) == 2
        assert s["exits"]["none"] == 3 and s["exits"]["entropy"] in (1, 3)
        br, gates, logits, _ = reference_path(m2, s["ids"])
        assert br == s["blocks_run"]
        assert np.array_equal(logits, np.asarray(s["logits"], dtype=np.float32))
    from beex import safetensors_io
    tensors, _ = safetensors_io.load(str(tmp_path / "model.safetensors"))
    assert tensors["blocks.0.attn.q.weight"].dtype == torch.float16
    assert tensors["skip.0.0.weight"].dtype == torch.float32
