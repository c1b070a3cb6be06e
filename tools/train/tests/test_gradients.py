"""Gradient checks of the custom autograd functions (float64).

sign and round have zero derivative almost everywhere, so their backward passes are surrogates
by design: each test checks the surrogate against its definition with finite differences, and
checks every exact gradient path (alpha, beta) with finite differences too."""
import pytest
import torch

from beex.model import BinLinear
from beex.quant import ApproxSignFn, approx_sign_poly, quantize


def away_from(x, points, margin=0.02):
    """Move values that lie within margin of a kink/jump so central differences do not cross it."""
    for p in points:
        near = (x - p).abs() < margin
        x = torch.where(near, x + 2 * margin, x)
    return x


def test_approx_sign_polynomial_gradcheck():
    u = away_from(torch.empty(200, dtype=torch.float64).uniform_(-1.5, 1.5), [-1.0, 0.0, 1.0])
    u.requires_grad_(True)
    assert torch.autograd.gradcheck(approx_sign_poly, (u,), eps=1e-6, atol=1e-6)


def test_approx_sign_backward_is_derivative_of_polynomial():
    u = torch.empty(500, dtype=torch.float64).uniform_(-1.5, 1.5)
    u = torch.cat([u, torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=torch.float64)]).requires_grad_(True)
    g = torch.randn_like(u)
    (ApproxSignFn.apply(u) * g).sum().backward()
    ours = u.grad.clone()
    u2 = u.detach().clone().requires_grad_(True)
    (approx_sign_poly(u2) * g).sum().backward()
    assert torch.allclose(ours, u2.grad, atol=1e-12)
    # forward is the exact sign with sign(0) = +1
    assert torch.equal(ApproxSignFn.apply(torch.tensor([-0.0, 0.0, -1e-30, 3.0])), torch.tensor([1.0, 1.0, -1.0, 1.0]))


def finite_diff(f, x, eps=1e-6):
    grad = torch.zeros_like(x)
    flat = x.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        hi = f(x).item()
        flat[i] = old - eps
        lo = f(x).item()
        flat[i] = old
        grad.view(-1)[i] = (hi - lo) / (2 * eps)
    return grad


def test_activation_sign_quantizer_beta_path_and_surrogate():
    # Q_1(x) = beta * sign(x), beta = mean|x|. Finite differences (no sign change) see only the
    # exact beta path; the analytic gradient adds beta * ApproxSign'(x) * g on top of it.
    torch.manual_seed(0)
    x = away_from(torch.randn(3, 7, dtype=torch.float64) * 0.6, [-1.0, 0.0, 1.0])
    g = torch.randn(3, 7, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    (quantize(xr, 1) * g).sum().backward()
    numeric = finite_diff(lambda t: (quantize(t, 1) * g).sum(), x.clone())
    beta = x.abs().mean(dim=-1, keepdim=True)
    surrogate = beta * g * torch.clamp(2 - 2 * x.abs(), min=0)
    assert torch.allclose(xr.grad - surrogate, numeric, atol=1e-7)


def test_round_symmetric_straight_through():
    torch.manual_seed(1)
    for bits in (2, 4, 8):
        x = torch.randn(4, 9, dtype=torch.float64, requires_grad=True)
        g = torch.randn(4, 9, dtype=torch.float64)
        (quantize(x, bits) * g).sum().backward()
        # every element lies inside the clamp range (s comes from the row max): identity
        assert torch.allclose(x.grad, g, rtol=1e-12, atol=0)
        # the quantizer it stands in for tracks x within half a step: |Q(x) - x| <= s / 2
        s = x.detach().abs().amax(dim=-1, keepdim=True) / (2 ** (bits - 1) - 1)
        assert bool(((quantize(x.detach(), bits) - x.detach()).abs() <= s / 2 + 1e-12).all())


def test_binlinear_alpha_path_and_surrogate():
    # y = alpha * (sign(W) x) + b. Finite differences on W (no sign change) see the exact alpha
    # path; the analytic gradient adds alpha_o * ApproxSign'(W_oi) * (g_o x_i).
    torch.manual_seed(2)
    lin = BinLinear(6, 4, 1, 32).double()
    with torch.no_grad():
        lin.weight.copy_(away_from(torch.randn(4, 6, dtype=torch.float64) * 0.5, [-1.0, 0.0, 1.0]))
    x = torch.randn(5, 6, dtype=torch.float64)
    g = torch.randn(5, 4, dtype=torch.float64)
    (lin((x, None)) * g).sum().backward()
    W = lin.weight.detach().clone()

    def f(w):
        with torch.no_grad():
            lin.weight.copy_(w)
            return (lin((x, None)) * g).sum()

    numeric = finite_diff(f, W.clone())
    alpha = W.abs().mean(dim=1, keepdim=True)
    surrogate = alpha * (g.t() @ x) * torch.clamp(2 - 2 * W.abs(), min=0)
    assert torch.allclose(lin.weight.grad - surrogate, numeric, atol=1e-7)
    # bias and input gradients are exact: gradcheck them directly
    lin.weight.data.copy_(W)
    xr = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: lin((t, None)), (xr,))
    b = lin.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda bb: torch.nn.functional.linear(x, torch.where(W >= 0, 1.0, -1.0).double()) * W.abs().mean(1) + bb, (b,))


def test_final_exit_loss_trains_the_last_exit_alone():
    """exit_loss = "final" (DeeBERT's first stage): the loss is the last exit's CE, and earlier exits get no gradient."""
    from beex.train import TRAIN_DEFAULTS, routing_loss
    import torch.nn.functional as F
    torch.manual_seed(0)
    logits = torch.randn(4, 5, 3, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 1, 0])
    cfg = dict(TRAIN_DEFAULTS, exit_loss="final")
    loss = routing_loss(logits, labels, cfg)
    assert torch.allclose(loss, F.cross_entropy(logits[3], labels))
    loss.backward()
    assert torch.count_nonzero(logits.grad[:3]) == 0 and torch.count_nonzero(logits.grad[3]) > 0
    # the default still trains every exit
    logits.grad = None
    routing_loss(logits, labels, dict(TRAIN_DEFAULTS)).backward()
    assert torch.count_nonzero(logits.grad[0]) > 0


def test_early_exit_loss_trains_the_exits_before_the_last():
    """exit_loss = "early" (DeeBERT's second stage): the mean CE of exits 1..L-1; the last exit gets no gradient."""
    from beex.train import TRAIN_DEFAULTS, routing_loss
    import torch.nn.functional as F
    torch.manual_seed(0)
    logits = torch.randn(4, 5, 3, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 1, 0])
    loss = routing_loss(logits, labels, dict(TRAIN_DEFAULTS, exit_loss="early"))
    assert torch.allclose(loss, sum(F.cross_entropy(logits[i], labels) for i in range(3)) / 3)
    loss.backward()
    assert torch.count_nonzero(logits.grad[3]) == 0 and all(torch.count_nonzero(logits.grad[i]) > 0 for i in range(3))


def test_init_from_loads_an_export_and_refuses_another_architecture(tmp_path):
    """train.init_from: an exported model's weights load into a model of the same config; another config is refused."""
    import json
    from beex import safetensors_io
    from beex.export import full_config, state_tensors
    from beex.model import BEExformer
    from beex.train import init_from
    from conftest import tiny_cfg
    torch.manual_seed(3)
    src = BEExformer(tiny_cfg(act_bits=1))
    safetensors_io.save(state_tensors(src, "F32"), str(tmp_path / "model.safetensors"),
                        metadata={"config": json.dumps(full_config(src, {}), sort_keys=True)})
    dst = BEExformer(tiny_cfg(act_bits=1))
    init_from(dst, str(tmp_path), log=lambda *_: None)
    for name, value in src.state_dict().items():
        assert torch.equal(value, dst.state_dict()[name]), name
    with pytest.raises(SystemExit, match="config differs from this run's in d_ff"):
        init_from(BEExformer(tiny_cfg(act_bits=1, d_ff=32)), str(tmp_path), log=lambda *_: None)
    # other bit widths share the latent tensors: accepted, and said (tests/test_smoke_train.py runs one)
    logs = []
    init_from(BEExformer(tiny_cfg(act_bits=8)), str(tmp_path), log=logs.append)
    assert any("other bit widths (act_bits 1 -> 8)" in line for line in logs), logs


def test_self_distillation_teaches_early_exits_from_the_detached_last():
    """self_distill = a: exits 1..L-1 get (1-a) CE + a T^2 KL(p_L/T || p_i/T) with p_L detached; the last exit keeps its CE."""
    from beex.train import TRAIN_DEFAULTS, routing_loss
    import torch.nn.functional as F
    torch.manual_seed(1)
    labels = torch.tensor([0, 1, 2, 1, 0])
    cfg = dict(TRAIN_DEFAULTS, self_distill=1.0, routing_weight=0.0, lambda_depth=1.0)
    logits = torch.randn(3, 5, 3, requires_grad=True)
    loss = routing_loss(logits, labels, cfg)
    T = cfg["distill_temperature"]
    p_last = F.softmax(logits[2].detach() / T, -1)
    kl = [(p_last * (p_last.log() - F.log_softmax(logits[i] / T, -1))).sum(-1).mean() * T * T for i in range(2)]
    expected = (1 * kl[0] + 2 * kl[1] + 3 * F.cross_entropy(logits[2], labels)) / 6  # the depth-weighted sum
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    # the last exit's gradient is its CE's alone: the distillation terms do not reach it
    last = logits.detach()[2].clone().requires_grad_(True)
    (3 * F.cross_entropy(last, labels) / 6).backward()
    assert torch.allclose(logits.grad[2], last.grad, atol=1e-7)
    # an early exit that already equals the last one gets no gradient from a = 1
    same = logits.detach().clone()
    same[0] = same[2]
    same.requires_grad_(True)
    routing_loss(same, labels, cfg).backward()
    assert same.grad[0].abs().max() < 1e-6
