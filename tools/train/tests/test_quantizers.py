"""Quantizer forward passes against the contract, and the engine's integer identities
(XNOR-popcount for a = 1, the bit-plane identity for 2 <= a <= 8) on packed rows."""
import numpy as np
import pytest
import torch

from beex.quant import quantize, quantize_codes, sign_pm1


def pack_rows(bits01):
    """docs/MODEL.md packing: ceil(K/256)*4 little-endian uint64 words per row, element j is
    bit j%64 of word j//64, zero tail."""
    n, K = bits01.shape
    words = -(-K // 256) * 4
    out = np.zeros((n, words), dtype=np.uint64)
    for j in range(K):
        out[:, j // 64] |= (bits01[:, j].astype(np.uint64) << np.uint64(j % 64))
    return out


def popcount(words):
    return np.array([sum(bin(int(w)).count("1") for w in row) for row in words], dtype=np.int64)


@pytest.mark.parametrize("K", [5, 64, 200, 300])
def test_xnor_popcount_identity(K):
    rng = np.random.default_rng(K)
    W = torch.from_numpy(rng.standard_normal((7, K)).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((1, K)).astype(np.float32))
    B = sign_pm1(W).numpy().astype(np.int64)
    s, beta = quantize_codes(x, 1)
    s = s.numpy().astype(np.int64)[0]
    wb = pack_rows(B > 0)
    xb = pack_rows((s > 0)[None, :])
    dot = K - 2 * popcount(wb ^ xb)
    assert np.array_equal(dot, B @ s)
    # and Q_1 itself is beta * sign with beta = mean|x|
    assert torch.equal(quantize(x, 1), beta * sign_pm1(x))


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("K", [3, 256, 333])
def test_bit_plane_identity(bits, K):
    rng = np.random.default_rng(bits * 1000 + K)
    m = 2 ** (bits - 1) - 1
    W = torch.from_numpy(rng.standard_normal((6, K)).astype(np.float32))
    x = torch.from_numpy((rng.standard_normal((1, K)) * 3).astype(np.float32))
    q, s = quantize_codes(x, bits)
    q = q.numpy().astype(np.int64)[0]
    assert q.min() >= -m and q.max() <= m
    B = sign_pm1(W).numpy().astype(np.int64)
    wb = pack_rows(B > 0)
    u = q + m
    total = np.zeros(6, dtype=np.int64)
    for p in range(bits):
        plane = pack_rows((((u >> p) & 1) == 1)[None, :])
        and_count = popcount(wb & plane)
        total += (1 << p) * (2 * and_count - popcount(plane)[0])
    total -= m * B.sum(axis=1)
    assert np.array_equal(total, B @ q)
    # Q_bits is s * q exactly (same float32 operations)
    assert torch.equal(quantize(x, bits), s * torch.from_numpy(q.astype(np.float32))[None, :])


def test_round_half_even_and_order_of_operations():
    # m = 7 (4 bits): max|x| = 7 gives s = 1, so x / s = x and ties are visible.
    x = torch.tensor([[7.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.4999]])
    q, s = quantize_codes(x, 4)
    assert s.item() == 1.0
    assert q.tolist() == [[7, 0, 2, 2, -0, -2, -2, 3]]


def test_zero_row_gives_zero_scale_and_codes():
    x = torch.zeros(2, 5)
    for bits in (2, 4, 8):
        q, s = quantize_codes(x, bits)
        assert torch.equal(q, torch.zeros_like(q)) and torch.equal(s, torch.zeros_like(s))
        assert torch.equal(quantize(x, bits), torch.zeros_like(x))
    q, beta = quantize_codes(x, 1)
    assert torch.equal(q, torch.ones_like(q)) and torch.equal(beta, torch.zeros_like(beta))


def test_unsupported_bits_rejected():
    for bits in (0, 9, 16):
        with pytest.raises(ValueError):
            quantize(torch.ones(1, 3), bits)
