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


def approx_sign_poly(u):
    """Bi-Real Net's ApproxSign: -1 (u < -1), 2u + u^2 (-1 <= u < 0), 2u - u^2 (0 <= u < 1),
    +1 (u >= 1). Only its derivative is used (as the backward of sign); tests check it."""
    return torch.where(u < -1, -torch.ones_like(u),
                       torch.where(u < 0, 2 * u + u * u,
                                   torch.where(u < 1, 2 * u - u * u, torch.ones_like(u))))


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


class RoundCodesFn(torch.autograd.Function):
    """Integer codes q = clamp(round_half_even(x / s), -m, m) and scales s = max|x| / m per row
    (last dim); s is not learnt. Backward of q: straight-through inside the clamp range,
    dq/dx = 1/s there (so Q = s * q passes gradients unchanged: every element is inside the
    range because s comes from the row's own max)."""

    @staticmethod
    def forward(ctx, x, bits):
        m = float(2 ** (bits - 1) - 1)
        s = x.abs().amax(dim=-1, keepdim=True) / m
        s_safe = torch.where(s > 0, s, torch.ones_like(s))
        q = torch.clamp(torch.round(x / s_safe), -m, m)
        ctx.save_for_backward(x, s, s_safe)
        ctx.m = m
        ctx.mark_non_differentiable(s)
        return q, s

    @staticmethod
    def backward(ctx, grad_q, grad_s):
        x, s, s_safe = ctx.saved_tensors
        inside = (x.abs() <= ctx.m * s).to(grad_q.dtype)
        return grad_q * inside / s_safe, None


def quantize_parts(x, bits):
    """Q_bits of docs/MODEL.md split as (codes, per-row scale), differentiably: Q = scale * codes.

    bits = 32 gives (x, None). Layers multiply the integer-valued product B . codes by the scale
    afterwards, as the engine does, so the reference's products are exact integers."""
    if bits == 32:
        return x, None
    if bits == 1:
        # beta = mean|x| keeps its ordinary gradient; the sign part uses ApproxSign.
        return ApproxSignFn.apply(x), x.abs().mean(dim=-1, keepdim=True)
    if 2 <= bits <= 8:
        return RoundCodesFn.apply(x, bits)
    raise ValueError(f"unsupported bit width {bits}: expected 1, 2, 4, 8 or 32")


def quantize(x, bits):
    """Q_bits of docs/MODEL.md applied to each row (last dimension) of x, differentiably."""
    codes, scale = quantize_parts(x, bits)
    return codes if scale is None else scale * codes


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
