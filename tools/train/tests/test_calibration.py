"""Temperatures, ECE, and the slfn_gate_center flag."""
import numpy as np
import torch

from beex.calibration import apply_temperatures, ece, fit_temperature, nll
from beex.model import BEExformer
from conftest import tiny_cfg


def test_ece_of_a_calibrated_and_an_overconfident_predictor():
    rng = np.random.default_rng(0)
    n = 20000
    p = rng.uniform(0.5, 1.0, n)  # confidence of class 1
    labels = (rng.uniform(size=n) < p).astype(int)  # drawn from the stated probability
    logits = np.stack([np.zeros(n), np.log(p / (1 - p))], axis=1)
    assert ece(logits, labels) < 0.01
    assert ece(logits * 3, labels) > 0.05  # sharper than the truth


def test_fit_temperature_recovers_the_scale():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, size=(20000, 3))
    p = np.exp(z / 2) / np.exp(z / 2).sum(1, keepdims=True)  # the truth is softmax(z / 2)
    labels = np.array([rng.choice(3, p=row) for row in p])
    t = fit_temperature(z, labels)
    assert abs(t - 2.0) < 0.1
    assert nll(z, labels, t) < nll(z, labels, 1.0)
    assert ece(z / t, labels) < ece(z, labels)


def test_temperatures_divide_each_exit_in_float32():
    torch.manual_seed(0)
    m = BEExformer(tiny_cfg()).eval()
    ids = torch.randint(0, 1000, (2, 7))
    with torch.no_grad():
        raw = m(ids).numpy()
        m.set_temperatures([0.5, 2.0, 3.0])
        scaled = m(ids).numpy()
    assert m.cfg["exit_temperatures"] == [0.5, 2.0, 3.0]
    expect = apply_temperatures(raw.transpose(1, 0, 2), [0.5, 2.0, 3.0]).transpose(1, 0, 2)
    assert np.array_equal(scaled, expect)
    assert (scaled.argmax(-1) == raw.argmax(-1)).all()
    m.set_temperatures(None)
    assert "exit_temperatures" not in m.cfg


def test_gate_center_gives_g2_an_informative_bit_at_a1():
    torch.manual_seed(0)
    plain = BEExformer(tiny_cfg(act_bits=1)).eval()
    centred = BEExformer(tiny_cfg(act_bits=1, slfn_gate_center=True)).eval()
    centred.load_state_dict(plain.state_dict())
    assert centred.cfg["slfn_gate_center"] is True and "slfn_gate_center" not in plain.cfg
    seen = {}

    def grab(name):
        def hook(mod, inp):
            seen[name] = inp[0]
        return hook

    plain.blocks[0].slfn.g2.register_forward_pre_hook(grab("plain"))
    centred.blocks[0].slfn.g2.register_forward_pre_hook(grab("centred"))
    ids = torch.randint(0, 1000, (2, 9))
    with torch.no_grad():
        plain(ids)
        centred(ids)
    codes_plain, codes_centred = seen["plain"][0], seen["centred"][0]  # (codes, scale) of Q_1
    assert (codes_plain == 1).all()  # sigma > 0: every code +1, G2 sees only beta
    assert (codes_centred == -1).any() and (codes_centred == 1).any()
