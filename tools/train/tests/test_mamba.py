"""DYNAMAX's Mamba exits (beex/mamba.py): torch vs the numpy float32 reference, causality, right
padding, the zero out_proj starting point, the contract's tensor names."""
import numpy as np
import pytest
import torch

from beex.mamba import (MAMBA_TENSORS, DynamaxModel, MambaBlock, exit_logits_np, from_backbone,
                        head_params_np, mamba_block_np, sample_outputs_np)
from beex.model import BEExformer
from conftest import tiny_cfg

MCFG = {"d_inner": 12, "d_state": 4, "d_conv": 4, "dt_rank": 3}


def randomized_block(seed=0, d=16, mcfg=MCFG):
    torch.manual_seed(seed)
    blk = MambaBlock(d, mcfg["d_inner"], mcfg["d_state"], mcfg["d_conv"], mcfg["dt_rank"])
    with torch.no_grad():
        blk.out_proj.weight.normal_(0, 0.3)  # a zero out_proj would hide the block
        blk.dt_proj.bias.normal_(0, 2.0)     # deltas from tiny to large (softplus both branches)
        blk.D.normal_(1, 0.5)
    return blk


def randomized_model(seed=0, mcfg=MCFG, **over):
    torch.manual_seed(seed)
    cfg = tiny_cfg(exit_temperatures=[1.5, 0.8, 1.2], **over)
    m = DynamaxModel(cfg, mamba_cfg=mcfg)
    with torch.no_grad():
        for head in m.exits:
            head.mamba.out_proj.weight.normal_(0, 0.3)
    return m.eval()


def test_block_matches_numpy_reference():
    blk = randomized_block()
    u = torch.randn(1, 11, 16)
    with torch.no_grad():
        m = blk(u)[0].numpy()
    p = {k: v.numpy() for k, v in blk.state_dict().items()}
    ref = mamba_block_np(p, u[0].numpy())
    assert ref.dtype == np.float32
    np.testing.assert_allclose(m, ref, rtol=1e-4, atol=1e-5)


def test_softplus_large_branch_matches():
    blk = randomized_block(1)
    with torch.no_grad():
        blk.dt_proj.bias.fill_(25.0)  # every delta on the v > 20 branch
    u = torch.randn(1, 5, 16)
    with torch.no_grad():
        m = blk(u)[0].numpy()
    ref = mamba_block_np({k: v.numpy() for k, v in blk.state_dict().items()}, u[0].numpy())
    np.testing.assert_allclose(m, ref, rtol=1e-4, atol=1e-4)


def test_model_matches_numpy_reference():
    m = randomized_model()
    ids = [101, 2023, 3185, 2001, 2307, 999, 102]
    with torch.no_grad():
        lt = m(torch.tensor([ids]))[:, 0].numpy()
    ln = sample_outputs_np(m, ids)
    assert ln.shape == (3, 3) and ln.dtype == np.float32
    np.testing.assert_allclose(lt, ln, rtol=1e-4, atol=1e-5)


def test_causal():
    blk = randomized_block(2)
    u = torch.randn(1, 9, 16)
    u2 = u.clone()
    t = 5
    u2[0, t] += torch.randn(16)
    with torch.no_grad():
        a, b = blk(u), blk(u2)
    assert torch.equal(a[0, :t], b[0, :t])
    assert not torch.allclose(a[0, t:], b[0, t:])


def test_right_padding_invariance():
    m = randomized_model(3)
    seqs = [[101, 2023, 3185, 102], [101, 2307, 999, 2023, 3185, 2001, 102], [101, 102]]
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.int64)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = True
    m = m.double()
    m.temperatures = m.temperatures.double()
    with torch.no_grad():
        batched = m(ids, mask)
        for i, s in enumerate(seqs):
            single = m(torch.tensor([s]))[:, 0]
            torch.testing.assert_close(batched[:, i], single, rtol=1e-9, atol=1e-10)


def test_zero_out_proj_is_the_linear_head():
    torch.manual_seed(4)
    cfg = tiny_cfg(exit_temperatures=[1.5, 0.8, 1.2])
    base = BEExformer(cfg).eval()
    dm = from_backbone(base, MCFG)
    ids = torch.tensor([[101, 2023, 3185, 2001, 102, 0], [101, 2307, 999, 102, 0, 0]])
    mask = ids != 0
    with torch.no_grad():
        assert torch.equal(dm(ids, mask), base(ids, mask))
    # the numpy reference too (one sample)
    with torch.no_grad():
        want = base(ids[:1, :5])[:, 0].numpy()
    np.testing.assert_allclose(sample_outputs_np(dm, ids[0, :5].tolist()), want, rtol=1e-5, atol=1e-6)


def test_state_dict_names_and_shapes():
    m = randomized_model()
    cfg = m.cfg
    sd = m.state_dict()
    d, C, L = cfg["d_model"], cfg["n_classes"], cfg["n_layers"]
    E, N, K, R = MCFG["d_inner"], MCFG["d_state"], MCFG["d_conv"], MCFG["dt_rank"]
    exit_names = {k for k in sd if k.startswith("exits.")}
    want = set()
    for i in range(L):
        want |= {f"exits.{i}.weight", f"exits.{i}.bias"}
        want |= {f"exits.{i}.mamba.{t}" for t in MAMBA_TENSORS}
    assert exit_names == want
    shapes = {"in_proj.weight": (2 * E, d), "conv.weight": (E, K), "conv.bias": (E,),
              "x_proj.weight": (R + 2 * N, E), "dt_proj.weight": (E, R), "dt_proj.bias": (E,),
              "A_log": (E, N), "D": (E,), "out_proj.weight": (d, E)}
    for t, s in shapes.items():
        assert tuple(sd[f"exits.1.mamba.{t}"].shape) == s, t
    assert tuple(sd["exits.0.weight"].shape) == (C, d)
    assert m.cfg["mamba_exits"] == MCFG


def test_standard_init():
    torch.manual_seed(5)
    blk = MambaBlock(16, 12, 4, 4, 3)
    np.testing.assert_allclose(torch.exp(blk.A_log).detach().numpy(), np.tile(np.arange(1, 5), (12, 1)), rtol=1e-6)
    assert torch.equal(blk.D.detach(), torch.ones(12))
    assert torch.count_nonzero(blk.out_proj.weight) == 0
    dt = torch.nn.functional.softplus(blk.dt_proj.bias.detach())
    assert float(dt.min()) >= 1e-3 * (1 - 1e-4) and float(dt.max()) <= 1e-1 * (1 + 1e-4)


def test_exit_logits_np_pool_and_temperature():
    blk = randomized_block(6)
    p = {k: v.numpy() for k, v in blk.state_dict().items()}
    u = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32)
    b = np.array([0.1, -0.2], dtype=np.float32)
    z = exit_logits_np(p, u, w, b, 2.0)
    v = u + mamba_block_np(p, u)
    np.testing.assert_allclose(z, (w @ v.mean(0) + b) / 2, rtol=1e-5, atol=1e-6)
