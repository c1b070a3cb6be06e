"""Quantizers of docs/MODEL.md as autograd functions.

Forward passes are exactly the contract's integer codes times their scales; backward passes are
the surrogate gradients of the shared spec:
- sign (weights, and 1-bit activations/embeddings): Bi-Real Net's ApproxSign derivative,
  d/du = 2 - 2|u| for |u| < 1, else 0 (the derivative of the second-order polynomial
  2u -/+ u^2 that approximates sign on [-1, 1]);
- n-bit symmetric rounding (2 <= n <= 8): straight-through inside the clamp range.
"""
import torch


def sign_pm1(x):
    """sign with sign(0) = +1, in x's dtype."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class ApproxSignFn(torch.autograd.Function):
    """Forward sign(u) (sign(0) = +1); backward ApproxSign'(u) = max(0, 2 - 2|u|)."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return sign_pm1(u)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * torch.clamp(2.0 - 2.0 * u.abs(), min=0.0)


class RoundSymmetricFn(torch.autograd.Function):
    """Q_n(x) = s * clamp(round_half_even(x / s), -m, m), s = max|x| / m per row (last dim).

    Straight-through backward inside the clamp range |x| <= m * s; with s taken from the row's
    own max every element is inside it, so the gradient is the identity (s is not learnt).
    """

    @staticmethod
    def forward(ctx, x, bits):
        m = float(2 ** (bits - 1) - 1)
        s = x.abs().amax(dim=-1, keepdim=True) / m
        s_safe = torch.where(s > 0, s, torch.ones_like(s))
        q = torch.clamp(torch.round(x / s_safe), -m, m)
        ctx.save_for_backward(x, s)
        ctx.m = m
        return s * q

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        inside = x.abs() <= ctx.m * s
        return grad * inside.to(grad.dtype), None


def quantize(x, bits):
    """Q_bits of docs/MODEL.md applied to each row (last dimension) of x, differentiably."""
    if bits == 32:
        return x
    if bits == 1:
        # beta = mean|x| keeps its ordinary gradient; the sign part uses ApproxSign.
        beta = x.abs().mean(dim=-1, keepdim=True)
        return beta * ApproxSignFn.apply(x)
    if 2 <= bits <= 8:
        return RoundSymmetricFn.apply(x, bits)
    raise ValueError(f"unsupported bit width {bits}: expected 1, 2, 4, 8 or 32")


def quantize_codes(x, bits):
    """Integer codes and per-row scales of Q_bits (what a model file stores), no autograd.

    Returns (codes, scale) with x_hat = scale * codes; bits = 1 gives codes in {-1, +1} and
    scale = beta = mean|x|.
    """
    with torch.no_grad():
        if bits == 1:
            return sign_pm1(x), x.abs().mean(dim=-1, keepdim=True)
        if 2 <= bits <= 8:
            m = float(2 ** (bits - 1) - 1)
            s = x.abs().amax(dim=-1, keepdim=True) / m
            s_safe = torch.where(s > 0, s, torch.ones_like(s))
            return torch.clamp(torch.round(x / s_safe), -m, m), s
        raise ValueError(f"no integer codes for bit width {bits}")
