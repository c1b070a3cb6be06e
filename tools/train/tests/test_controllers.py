"""The learned exit controllers (beex/controllers.py): tensor names and shapes, safetensors round
trip, the reference exit rules on hand-made cases, conformal q-hat and coverage, torch == numpy."""
import json
import math
import os

import numpy as np
import pytest
import torch

from beex import controllers as C
from beex import safetensors_io
from beex.export import export, load_model_dir
from beex.model import BEExformer
from beex.tokenizer import WordPieceTokenizer
from conftest import REPO, tiny_cfg

VOCAB = os.path.join(REPO, "data", "vocab", "bert-base-uncased-vocab.txt")
SST2 = os.path.join(REPO, "models", "sst2-default")


def logits_for_p(ps):
    return np.array([[0.0, math.log(p / (1 - p))] for p in ps], dtype=np.float32)


def test_names_and_shapes():
    d, L, H = 16, 3, 8
    t = C.export_tensors(C.QExit(d, L, H), C.LearnedGate(L, 2.0))
    want = C.controller_names(d, L, H)
    assert set(t) == set(want)
    for k, shape in want.items():
        assert tuple(t[k].shape) == shape, k
        assert t[k].dtype == torch.float32


def test_safetensors_round_trip(tmp_path):
    d, L, H = 16, 3, 8
    torch.manual_seed(0)
    qx, gate = C.QExit(d, L, H), C.LearnedGate(L, 2.0)
    torch.nn.init.normal_(gate.weight)
    t = C.export_tensors(qx, gate)
    safetensors_io.save(t, tmp_path / "c.safetensors")
    back, _ = safetensors_io.load(tmp_path / "c.safetensors")
    assert set(back) == set(t)
    for k in t:
        assert torch.equal(back[k], t[k])
    qx2, gate2 = C.QExit(d, L, H), C.LearnedGate(L, 2.0)
    qx2.load_state_dict({k[len("q_exit."):]: v for k, v in back.items() if k.startswith("q_exit.")})
    gate2.load_state_dict({k[len("learned_gate."):]: v for k, v in back.items() if k.startswith("learned_gate.")})
    m = torch.randn(5, L + 1, d)
    assert torch.equal(qx(m), qx2(m))


def test_load_model_dir_skips_controllers(tmp_path):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    m = BEExformer(cfg)
    tok = WordPieceTokenizer(VOCAB)
    out = tmp_path / "m"
    export(m, str(out), {"thresholds": {}}, tok, ["a fine film ."], [1], write_pt=False)
    tensors, meta = safetensors_io.load(out / "model.safetensors")
    tensors.update(C.export_tensors(C.QExit(cfg["d_model"], cfg["n_layers"], 8), C.LearnedGate(cfg["n_layers"])))
    safetensors_io.save(tensors, out / "model.safetensors", metadata=meta)
    m2, _ = load_model_dir(str(out))
    x = torch.tensor([tok.encode("a fine film .", cfg["max_len"])])
    assert torch.equal(m.eval()(x), m2(x))
    tensors["bogus.weight"] = torch.zeros(2)
    safetensors_io.save(tensors, out / "model.safetensors", metadata=meta)
    with pytest.raises(RuntimeError):
        load_model_dir(str(out))


def test_q_exit_cumulative_rule():
    lam = np.array([[0.2, 0.5, 0.9, 0.1],    # p 0.2 0.4 0.36 0.004, S 0.2 0.6 0.96 0.964
                    [0.0, 0.0, 0.0, 0.0],    # never halts: the last block answers
                    [0.7, 0.0, 0.0, 0.0],    # halts at once
                    [1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    p, S = C.q_exit_cumulative_np(lam)
    assert np.allclose(p[0], [0.2, 0.4, 0.36, 0.004], atol=1e-7)
    assert np.allclose(S[0], [0.2, 0.6, 0.96, 0.964], atol=1e-7)
    assert S.dtype == np.float32
    assert C.q_exit_exit_blocks(lam, 0.5).tolist() == [2, 4, 1, 1]
    assert C.q_exit_exit_blocks(lam, 0.1).tolist() == [1, 4, 1, 1]
    assert C.q_exit_exit_blocks(lam, 0.97).tolist() == [4, 4, 4, 1]  # S never passes 0.97: last answers
    assert C.q_exit_exit_blocks(lam, 0.7).tolist() == [3, 4, 4, 1]   # S_1 = 0.7 is not > 0.7
    # strictly greater: S_i == q does not exit
    assert C.q_exit_exit_blocks(np.array([[0.5, 0.5]], dtype=np.float32), 0.5).tolist() == [2]


def test_learned_gate_threshold():
    g = np.array([[0.1, 0.5, 0.9], [0.2, 0.3, 0.4], [0.95, 0.1, 0.1]], dtype=np.float32)
    assert C.learned_gate_exit_blocks(g, 0.5).tolist() == [2, 3, 1]  # g >= tau (inclusive)
    assert C.learned_gate_exit_blocks(g, 0.96).tolist() == [3, 3, 3]
    assert C.learned_gate_exit_blocks(g, 0.0).tolist() == [1, 1, 1]


def test_gate_features_closed_form():
    z = logits_for_p([0.8, 0.5])[None]  # p(class 1) = 0.8 at exit 1, 0.5 at exit 2
    phi = C.gate_features_np(z, 2.0)
    assert phi.shape == (1, 2, 4) and phi.dtype == np.float32

    def H(ps):
        return -sum(p * math.log(p) for p in ps if p > 0)
    q = np.array([0.64, 0.04]) / 0.68
    assert np.allclose(phi[0, 0], [0.8, H([0.8, 0.2]), 0.6, H(q)], atol=1e-6)
    assert np.allclose(phi[0, 1], [0.5, math.log(2), 0.0, math.log(2)], atol=1e-6)
    # k = 1: the powered entropy is the entropy
    phi1 = C.gate_features_np(z, 1.0)
    assert np.allclose(phi1[..., 3], phi1[..., 1], atol=1e-6)
    # saturated softmax (p = 0 for a class): no NaN, three classes
    zs = np.array([[[0.0, 200.0, -5.0]]], dtype=np.float32)
    f = C.gate_features_np(zs, 2.0)
    assert np.isfinite(f).all() and f[0, 0, 0] == 1.0 and f[0, 0, 1] == 0.0 and f[0, 0, 3] == 0.0


def test_oracle_and_targets():
    ce = np.array([[0.5, 0.1, 0.09, 0.0], [0.01, 0.5, 0.5, 0.5]])
    assert C.oracle_exits(ce, 0.0).tolist() == [4, 1]
    assert C.oracle_exits(ce, 0.2).tolist() == [2, 1]   # 0.1 + 0.1 < 0.09 + 0.15 < 0 + 0.2
    t = C.gate_targets(np.array([2, 1]), 4)
    assert t.tolist() == [[0, 1, 1, 1], [1, 1, 1, 1]]


def test_geometric_prior():
    g = C.geometric_prior(0.1, 6, 0.05)
    raw = 0.1 * 0.9 ** np.arange(6)
    assert np.allclose(g, raw / raw.sum()) and abs(g.sum() - 1) < 1e-12
    g = C.geometric_prior(0.1, 100, 0.05)  # 1 - 0.9^29 = 0.953 is the first cumulative mass > 0.95
    assert (g[:29] > 0).all() and (g[29:] == 0).all() and abs(g.sum() - 1) < 1e-12


def test_conformal_qhat_index():
    probs_y = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55], dtype=np.float32)
    probs = np.stack([probs_y, 1 - probs_y], 1)
    labels = np.zeros(9, dtype=np.int64)
    scores = np.sort(np.float32(1) - probs_y)
    # n = 9, alpha 0.1: ceil(10 * 0.9) = 9th smallest = the largest score
    assert C.conformal_qhat(probs, labels, 0.1) == float(scores[8])
    # alpha 0.3: ceil(10 * 0.7) = 7th smallest
    assert C.conformal_qhat(probs, labels, 0.3) == float(scores[6])
    # alpha 0.05: ceil(10 * 0.95) = 10 > n: every class in every set
    assert C.conformal_qhat(probs, labels, 0.05) == 1.0
    sets = C.conformal_sets(probs, float(scores[6]))
    assert sets[:, 0].sum() == 7 and sets.shape == (9, 2)


def test_conformal_coverage_synthetic():
    rng = np.random.default_rng(0)
    n, Cn, alpha = 12000, 3, 0.1
    logits = rng.normal(size=(n, Cn)) * 2
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(Cn, p=p) for p in true_p])
    model_p = np.exp(0.5 * logits) / np.exp(0.5 * logits).sum(1, keepdims=True)  # miscalibrated
    probs = model_p.astype(np.float32)
    qh = C.conformal_qhat(probs[:2000], labels[:2000], alpha)
    sets = C.conformal_sets(probs[2000:], qh)
    cov = sets[np.arange(n - 2000), labels[2000:]].mean()
    assert 1 - alpha - 0.02 <= cov <= 1 - alpha + 0.03
    cf = C.conformal_crossfit(probs, labels, alpha)
    assert 1 - alpha - 0.02 <= cf["coverage"] <= 1 - alpha + 0.03 and 1 <= cf["mean_size"] <= Cn


def test_torch_matches_numpy():
    torch.manual_seed(1)
    d, L, H, n = 16, 4, 8, 7
    qx = C.QExit(d, L, H)
    with torch.no_grad():
        for p in qx.parameters():
            p.mul_(3)  # spread lambda away from 0.5
    m = torch.randn(n, L + 1, d)
    t = {k: v.detach().numpy() for k, v in qx.state_dict().items()}
    lam_np = C.q_exit_lambdas_np(t, m.numpy())
    lam_t = qx(m).detach().numpy()
    assert lam_np.shape == (n, L) and np.allclose(lam_np, lam_t, atol=2e-6)
    assert lam_np.min() < 0.3 and lam_np.max() > 0.7
    # prefixed names work too
    assert np.array_equal(C.q_exit_lambdas_np(C.export_tensors(qx), m.numpy()), lam_np)
    # the training's halting distribution: p_i as the reference, the last block the remaining mass
    p_t = C.halting_distribution(torch.from_numpy(lam_np).double()).numpy()
    p_np, S_np = C.q_exit_cumulative_np(lam_np)
    assert np.allclose(p_t[:, :-1], p_np[:, :-1], atol=1e-6)
    assert np.allclose(p_t.sum(1), 1.0) and np.allclose(p_t[:, -1], 1 - S_np[:, -2], atol=1e-6)

    gate = C.LearnedGate(L, 2.0)
    with torch.no_grad():
        gate.weight.normal_(0, 2)
        gate.bias.normal_(0, 1)
    z = np.random.default_rng(0).normal(size=(n, L, 3)).astype(np.float32) * 3
    phi = C.gate_features_np(z, 2.0)
    g_np = C.gate_scores_np({k: v.detach().numpy() for k, v in gate.state_dict().items()}, phi)
    g_t = gate(torch.from_numpy(phi)).detach().numpy()
    assert np.allclose(g_np, g_t, atol=1e-6)
    assert np.array_equal(C.gate_scores_np(C.export_tensors(gate=gate), phi), g_np)


def test_q_exit_loss_prefers_the_right_exit():
    """The loss falls as p moves to the exit with the lower CE (gradient sign sanity)."""
    ce = torch.tensor([[0.1, 2.0, 2.0]])
    prior = C.geometric_prior(0.1, 3)
    lo, _, _ = C.q_exit_loss(torch.tensor([[0.9, 0.5, 0.5]]), ce, prior, 0.5)
    hi, _, _ = C.q_exit_loss(torch.tensor([[0.1, 0.5, 0.5]]), ce, prior, 0.5)
    assert float(lo) < float(hi)


@pytest.mark.skipif(not os.path.exists(os.path.join(SST2, "golden.json")), reason="no shipped model")
def test_shipped_golden_controllers():
    """When models/sst2-default carries the controllers, its golden lambdas / gate scores / exits
    are the reference's on the stored tensors (a few samples, one at a time)."""
    golden = json.load(open(os.path.join(SST2, "golden.json")))
    if "q_exit" not in golden["policies"]:
        pytest.skip("model without controllers")
    tensors, meta = safetensors_io.load(os.path.join(SST2, "model.safetensors"))
    cfg = json.loads(meta["config"])
    L, d, H = cfg["n_layers"], cfg["d_model"], cfg["q_exit"]["hidden"]
    for k, shape in C.controller_names(d, L, H).items():
        assert tuple(tensors[k].shape) == shape and tensors[k].dtype == torch.float32
    model, _ = load_model_dir(SST2)
    q = golden["policies"]["q_exit"]["q"]
    tau = golden["policies"]["learned_gate"]["tau"]
    assert cfg["thresholds"]["q_exit"]["q"] == q and cfg["thresholds"]["learned_gate"]["tau"] == tau
    qt = {k: v.numpy() for k, v in tensors.items() if k.startswith("q_exit.")}
    gt = {k: v.numpy() for k, v in tensors.items() if k.startswith("learned_gate.")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # single-sample forwards: threads only contend on a shared machine
    try:
        check_golden_samples(model, golden["samples"][:6], qt, gt, cfg, q, tau)
    finally:
        torch.set_num_threads(threads)


def check_golden_samples(model, samples, qt, gt, cfg, q, tau):
    for s in samples:
        x = torch.tensor([s["ids"]])
        with torch.no_grad():
            emb = model.embed(x)
            ms = [emb.mean(1)]
            h = emb
            for blk in model.blocks:
                h = blk(h, None)
                ms.append(h.mean(1))
        pooled = torch.stack(ms, 1).numpy()
        lam = C.q_exit_lambdas_np(qt, pooled)[0]
        assert np.allclose(lam, s["lambdas"], atol=1e-5)
        g = C.gate_scores_np(gt, C.gate_features_np(np.asarray(s["logits"], np.float32)[None], cfg["learned_gate"]["power"]))[0]
        assert np.allclose(g, s["gate_scores"], atol=1e-6)
        assert s["exits"]["q_exit"] == int(C.q_exit_exit_blocks(np.asarray(s["lambdas"], np.float32)[None], q)[0])
        assert s["exits"]["learned_gate"] == int(C.learned_gate_exit_blocks(np.asarray(s["gate_scores"], np.float32)[None], tau)[0])
