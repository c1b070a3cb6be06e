"""Tensor names of the contract, padding invariance, and export -> re-import round trips."""
import json
import os
import struct

import numpy as np
import pytest
import torch

from beex import safetensors_io
from beex.export import export, load_model_dir, sample_outputs, size_report
from beex.model import BEExformer
from beex.policies import entropies_np, exit_blocks
from beex.tokenizer import WordPieceTokenizer
from conftest import REPO, tiny_cfg

VOCAB = os.path.join(REPO, "data", "vocab", "bert-base-uncased-vocab.txt")


def contract_names(L, with_map):
    names = {"embed.tok.weight", "embed.pos.weight", "embed.ln.weight", "embed.ln.bias"}
    if with_map:
        names.add("embed.tok_map")
    for i in range(L):
        for p in "qkvo":
            names |= {f"blocks.{i}.attn.{p}.weight", f"blocks.{i}.attn.{p}.bias"}
        for p in ("g1", "f1", "g2", "f2"):
            names |= {f"blocks.{i}.slfn.{p}.weight", f"blocks.{i}.slfn.{p}.bias"}
        for ln in ("ln1", "ln2"):
            names |= {f"blocks.{i}.{ln}.weight", f"blocks.{i}.{ln}.bias"}
        names |= {f"exits.{i}.weight", f"exits.{i}.bias"}
    return names


def random_tok_map(V, rows, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.integers(0, rows, size=V)
    m[:rows] = np.arange(rows)  # every row used
    return torch.from_numpy(m.astype(np.int64))


def test_tensor_names_and_shapes():
    cfg = tiny_cfg()
    m = BEExformer(cfg, tok_map=random_tok_map(cfg["vocab_size"], 50))
    sd = {k: v for k, v in m.state_dict().items() if v is not None}
    assert set(sd) == contract_names(cfg["n_layers"], True)
    d, f, C = cfg["d_model"], cfg["d_ff"], cfg["n_classes"]
    assert sd["embed.tok.weight"].shape == (50, d)
    assert sd["embed.tok_map"].dtype == torch.int64 and sd["embed.tok_map"].shape == (cfg["vocab_size"],)
    assert sd["embed.pos.weight"].shape == (cfg["max_len"], d)
    assert sd["blocks.0.attn.q.weight"].shape == (d, d)
    assert sd["blocks.1.slfn.g1.weight"].shape == (f, d) and sd["blocks.1.slfn.f2.weight"].shape == (d, f)
    assert sd["exits.2.weight"].shape == (C, d)
    assert set(k for k, v in BEExformer(cfg).state_dict().items() if v is not None) == contract_names(3, False)


@pytest.mark.parametrize("over", [{}, {"act_bits": 1, "emb_bits": 1}, {"act_bits": 4, "emb_bits": 8},
                                  {"weight_bits": 32, "act_bits": 32, "emb_bits": 32}])
def test_padding_does_not_change_outputs(over):
    # float64: in float32 the batched and single products round differently, and a 1-bit
    # quantizer turns a rounding difference at a value near 0 into a sign flip.
    torch.manual_seed(0)
    m = BEExformer(tiny_cfg(**over)).double().eval()
    seqs = [[101, 2009, 2003, 1037, 102], [101, 7592, 102], [101] + list(range(2000, 2012)) + [102]]
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.int64)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = True
    with torch.no_grad():
        batched = m(ids, mask)
        for i, s in enumerate(seqs):
            single = m(torch.tensor([s]))
            assert torch.allclose(batched[:, i], single[:, 0], atol=1e-9)


def test_stochastic_depth_skips_whole_blocks_in_training_only():
    # In training each sample gets either the whole block's output or its own input back (never a
    # mix); in evaluation always the block's output.
    torch.manual_seed(0)
    m = BEExformer(tiny_cfg(weight_bits=32, act_bits=32)).double()
    m.layer_drop = 0.9
    m.train()
    for mod in m.modules():  # dropout off, so the only randomness is the block draw
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    x = torch.randn(64, 5, 16, dtype=torch.float64)
    block = m.blocks[2]
    torch.manual_seed(1)
    y = m.run_block(2, block, x, None)
    full = block(x, None)
    kept = [bool(torch.equal(y[b], full[b])) for b in range(64)]
    skipped = [bool(torch.equal(y[b], x[b])) for b in range(64)]
    assert all(k != s for k, s in zip(kept, skipped))
    assert 0 < sum(kept) < 64  # p = 0.9 at the last block: some of 64 kept, most skipped
    m.eval()
    assert torch.equal(m.run_block(2, block, x, None), full)


def test_rejects_too_long_and_bad_bits():
    m = BEExformer(tiny_cfg())
    with pytest.raises(ValueError):
        m(torch.zeros(1, 17, dtype=torch.int64))
    with pytest.raises(ValueError):
        BEExformer(tiny_cfg(act_bits=3))


def test_safetensors_format_and_round_trip(tmp_path):
    t = {"a": torch.randn(3, 4), "b": torch.arange(7, dtype=torch.int64), "c": torch.tensor([1.5])}
    path = tmp_path / "x.safetensors"
    safetensors_io.save(t, str(path), metadata={"config": json.dumps({"k": 1})})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert (8 + n) % 8 == 0
    assert header["__metadata__"] == {"config": '{"k": 1}'}
    assert header["b"]["dtype"] == "I64" and header["a"]["dtype"] == "F32" and header["a"]["shape"] == [3, 4]
    begin, end = header["a"]["data_offsets"]
    assert np.array_equal(np.frombuffer(raw[8 + n + begin:8 + n + end], dtype="<f4").reshape(3, 4), t["a"].numpy())
    back, meta = safetensors_io.load(str(path))
    assert meta == {"config": '{"k": 1}'}
    for k in t:
        assert torch.equal(back[k], t[k])
    # a truncated file is rejected with a clear error, not a crash
    (tmp_path / "bad.safetensors").write_bytes(raw[:-4])
    with pytest.raises(ValueError):
        safetensors_io.load(str(tmp_path / "bad.safetensors"))


GOLDEN_TEXTS = ["a gorgeous , witty , seductive movie .", "dull", "it 's a charming and often affecting journey ."]


def export_tiny(out, extra, seed):
    """A tiny 3-block model with a pruned vocabulary, exported to `out` with golden samples of GOLDEN_TEXTS."""
    torch.manual_seed(seed)
    cfg = tiny_cfg()
    m = BEExformer(cfg, tok_map=random_tok_map(cfg["vocab_size"], 200)).eval()
    tok = WordPieceTokenizer(VOCAB)
    export(m, str(out), {"labels": ["a", "b", "c"], **extra}, tok, GOLDEN_TEXTS, [0, 1, 2])
    return m, cfg, tok


def test_export_reimport_and_golden(tmp_path):
    thresholds = {"entropy_reduction": {"tau": 0.2, "kappa": 0.9}, "patience": {"t": 1}, "confidence": {"tau": 0.4}}
    out = tmp_path / "m"
    m, cfg, tok = export_tiny(out, {"policy": "entropy_reduction", "thresholds": thresholds, "lowercase": True}, seed=3)
    texts = GOLDEN_TEXTS
    m2, cfg2 = load_model_dir(str(out))
    assert cfg2["thresholds"] == thresholds and cfg2["d_model"] == cfg["d_model"]
    assert json.load(open(out / "config.json")) == cfg2
    sd1, sd2 = m.state_dict(), m2.state_dict()
    for k, v in sd1.items():
        assert torch.equal(v, sd2[k]), k
    pt = torch.load(out / "model.pt")
    assert set(pt) == set(sd1)
    golden = json.load(open(out / "golden.json"))
    assert set(golden["policies"]) == {"none", "entropy_reduction", "patience", "confidence"}
    assert len(golden["samples"]) == 3
    for s, text in zip(golden["samples"], texts):
        assert s["text"] == text and s["ids"] == tok.encode(text, cfg["max_len"])
        logits = sample_outputs(m2, s["ids"])
        assert np.array_equal(np.array(s["logits"], dtype=np.float32), logits)
        assert np.allclose(s["entropies"], entropies_np(logits[None])[0])
        for name, params in golden["policies"].items():
            assert s["exits"][name] == int(exit_blocks(name, params, logits[None])[0])


def test_size_report_counts_packed_bits():
    cfg = tiny_cfg()
    m = BEExformer(cfg, tok_map=random_tok_map(cfg["vocab_size"], 100))
    r = size_report(m)
    d, f, C, L, T, V = 16, 24, 3, 3, 16, 30522
    bin_weights = L * (4 * d * d + 4 * d * f)
    alphas = L * (4 * d + 2 * f + 2 * d)
    biases = L * (4 * d + 2 * f + 2 * d)
    lns = L * 4 * d + 2 * d
    exits = L * (C * d + C)
    emb_bits = (100 + T) * d * 2 + (100 + T) * 32
    expected_bits = bin_weights + 32 * (alphas + biases + lns + exits) + emb_bits + 32 * V
    assert r["packed_bytes"] == expected_bits // 8
    assert r["fp32_bytes"] == 4 * (r["params"] - 100 * d + V * d)


def test_truncate_keeps_the_first_exits(tmp_path):
    """tools/train/truncate.py: blocks 1..N and their exits, byte for byte; the controllers dropped."""
    from truncate import truncate
    src, dst = tmp_path / "src", tmp_path / "dst"
    _, cfg, tok = export_tiny(src, {"exit_temperatures": [1.5, 2.0, 2.5], "thresholds": {"patience": {"t": 1}, "q_exit": {"q": 0.5}},
                                    "q_exit": {"hidden": 8}, "metrics": {"dev_acc_full": 0.5}}, seed=5)
    texts = GOLDEN_TEXTS
    worst, layers, _, samples = truncate(str(src), 2, str(dst))
    assert worst == 0.0 and layers == 3 and samples == 3
    tensors, meta = safetensors_io.load(str(dst / "model.safetensors"))
    assert set(tensors) == contract_names(2, True)
    cfg2 = json.loads(meta["config"])
    assert cfg2["n_layers"] == 2 and cfg2["exit_temperatures"] == [1.5, 2.0]
    assert cfg2["thresholds"] == {"patience": {"t": 1}} and "q_exit" not in cfg2 and "metrics" not in cfg2
    short, _ = load_model_dir(str(dst))
    full, _ = load_model_dir(str(src))  # with its exit temperatures, as stored
    ids = tok.encode(texts[0], cfg["max_len"])
    assert np.array_equal(sample_outputs(short, ids), sample_outputs(full, ids)[:2])
    with pytest.raises(ValueError):
        truncate(str(src), 3, str(tmp_path / "x"))  # nothing to drop


def test_onnx_peer_module_first_blocks():
    """export_onnx.py --blocks N: the traced module's logits are the reference's first N exits."""
    from export_onnx import OnnxPeer, max_diff_vs_reference, sample_inputs
    torch.manual_seed(7)
    cfg = tiny_cfg(weight_bits=32, act_bits=32, emb_bits=32, max_len=64)  # sample_inputs has 40-token rows
    m = BEExformer(cfg).eval()
    for blocks in (1, 3):
        peer = OnnxPeer(m, blocks).eval()
        cases = sample_inputs(cfg)
        with torch.no_grad():
            assert peer(*cases[0][:2]).shape[0] == blocks
        assert max_diff_vs_reference(m, lambda i, k: peer(i, k), cases, blocks) < 1e-4
    with pytest.raises(ValueError):
        OnnxPeer(m, 4)
