"""The selective-scan definition and its PyTorch paths: hand-computed values, reference vs the parallel scan
(outputs and every gradient, over dtypes and shapes), the half-resolution routes, and input errors."""
import math

import pytest
import torch

from mmmsvmamba.ops import (half_res_routes, merge_half_res_routes, ms2d_half_res_scan, selective_scan_fn,
                            selective_scan_ref)
from mmmsvmamba.ops.backend import resolve_backend
from mmmsvmamba.ops.testing import INPUT_NAMES, assert_scan_close, make_scan_inputs


def make_inputs(batch=2, dim=6, length=37, d_state=1, groups=1, dtype=torch.float32, requires_grad=True):
    """Sequence inputs (mmmsvmamba.ops.testing.make_scan_inputs) and delta_softplus=True, as keyword arguments."""
    inputs = make_scan_inputs(batch, dim, (length,), groups=groups, d_state=d_state, dtype=dtype,
                              requires_grad=requires_grad)
    return dict(inputs, delta_softplus=True)


def test_reference_matches_hand_computation():
    """L = 2, one channel, N = 1, no softplus: h0 = d0*b0*u0, h1 = exp(d1*a)*h0 + d1*b1*u1, y = c*h + D*u."""
    u, d, b, c, a, skip = (0.5, -1.0), (0.3, 0.7), (2.0, -1.5), (1.0, 0.25), -0.8, 0.4
    h0 = d[0] * b[0] * u[0]
    h1 = math.exp(d[1] * a) * h0 + d[1] * b[1] * u[1]
    expected = [c[0] * h0 + skip * u[0], c[1] * h1 + skip * u[1]]
    t = lambda v, *shape: torch.tensor(v, dtype=torch.float64).reshape(*shape)  # noqa: E731
    y = selective_scan_ref(t(u, 1, 1, 2), t(d, 1, 1, 2), t([a], 1, 1), t(b, 1, 1, 1, 2), t(c, 1, 1, 1, 2),
                           t([skip], 1))
    assert y.flatten().tolist() == pytest.approx(expected, rel=1e-12)


def test_softplus_and_bias():
    inputs = make_inputs(dtype=torch.float64, requires_grad=False)
    explicit = dict(inputs, delta=torch.nn.functional.softplus(inputs['delta'] + inputs['delta_bias'][:, None]),
                    delta_bias=None, delta_softplus=False)
    torch.testing.assert_close(selective_scan_ref(**inputs), selective_scan_ref(**explicit))


GRAD_NAMES = INPUT_NAMES


def check_against_reference(inputs, dtype, backend):
    """``backend`` on ``inputs`` vs the sequential reference in float64 on the same values: output, every gradient."""
    inputs64 = {k: v.detach().double().requires_grad_() if torch.is_tensor(v) else v for k, v in inputs.items()}
    ref = selective_scan_ref(**inputs64)
    out = selective_scan_fn(**inputs, backend=backend)
    assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert_scan_close(out, ref, name='output')
    weights = torch.randn_like(ref)
    ref_grads = torch.autograd.grad((ref * weights).sum(), [inputs64[n] for n in GRAD_NAMES], materialize_grads=True)
    grads = torch.autograd.grad((out * weights.to(out.dtype)).sum(), [inputs[n] for n in GRAD_NAMES],
                                materialize_grads=True)
    for name, g, r in zip(GRAD_NAMES, grads, ref_grads):
        assert g.dtype == inputs[name].dtype, name
        assert_scan_close(g, r, name=f'grad {name}')


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize('length', [1, 2, 37, 256])
def test_torch_path_matches_reference(dtype, length):
    check_against_reference(make_inputs(length=length, dtype=dtype), dtype, 'torch')


@pytest.mark.parametrize('d_state, groups', [(4, 1), (2, 3)])
def test_torch_path_general_state_and_groups(d_state, groups):
    check_against_reference(make_inputs(d_state=d_state, groups=groups), torch.float32, 'torch')


def test_torch_path_gradcheck_float64():
    inputs = make_inputs(batch=1, dim=2, length=9, dtype=torch.float64)
    tensors = tuple(inputs[n] for n in GRAD_NAMES)

    def fn(*args):
        return selective_scan_fn(**dict(zip(GRAD_NAMES, args)), delta_softplus=True, backend='torch')

    assert torch.autograd.gradcheck(fn, tensors)


def test_long_sequence_stays_finite():
    """A strongly decaying channel over a long map (a 200x336 detection stage) must neither overflow nor drift."""
    inputs = make_inputs(batch=1, dim=2, length=200 * 336, requires_grad=False)
    inputs['delta'] = inputs['delta'].abs() * 10
    out = selective_scan_fn(**inputs, backend='torch')
    ref = selective_scan_ref(**inputs)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('height, width', [(4, 4), (3, 5), (7, 2), (1, 1)])
def test_routes_round_trip(height, width):
    x = torch.randn(2, 3, height, width)
    seq = half_res_routes(x)
    assert seq.shape == (2, 3, 3 * height * width)
    # route 1 is the row-major map reversed; route 2 the column-major map
    torch.testing.assert_close(seq[..., :height * width], x.flatten(2).flip(-1))
    torch.testing.assert_close(seq[..., height * width:2 * height * width], x.transpose(2, 3).flatten(2))
    torch.testing.assert_close(merge_half_res_routes(seq, height, width), 3 * x)
    stacked = merge_half_res_routes(seq, height, width, sum_routes=False)
    assert stacked.shape == (2, 3, 3, height, width)
    torch.testing.assert_close(stacked, x.unsqueeze(2).expand(-1, -1, 3, -1, -1))


def half_res_by_hand(u, delta, A, B, C, D, delta_bias):
    """The half-res scan spelled out: three route sequences, one concatenated reference scan, routes undone."""
    height, width = u.shape[-2:]

    def routes(x):
        cols = x.transpose(-1, -2).flatten(-2)
        return torch.cat([x.flatten(-2).flip(-1), cols, cols.flip(-1)], dim=-1)

    y = selective_scan_ref(routes(u), routes(delta), A, routes(B), routes(C), D, delta_bias, True)
    a, b, c = y.chunk(3, dim=-1)
    lead = y.shape[:2]
    return torch.stack([a.flip(-1).reshape(*lead, height, width),
                        b.reshape(*lead, width, height).transpose(-1, -2),
                        c.flip(-1).reshape(*lead, width, height).transpose(-1, -2)], dim=1)


@pytest.mark.parametrize('height, width', [(4, 6), (5, 3), (1, 7)])
def test_half_res_scan_matches_hand_version(height, width):
    gen = torch.Generator().manual_seed(1)
    u, delta = torch.randn(2, 4, height, width, generator=gen), torch.randn(2, 4, height, width, generator=gen)
    A = -torch.rand(4, 1, generator=gen) - 0.5
    B, C = torch.randn(2, 1, 1, height, width, generator=gen), torch.randn(2, 1, 1, height, width, generator=gen)
    D, bias = torch.randn(4, generator=gen), torch.randn(4, generator=gen)
    expected = half_res_by_hand(u, delta, A, B, C, D, bias)
    stacked = ms2d_half_res_scan(u, delta, A, B, C, D, bias, sum_routes=False, backend='torch')
    torch.testing.assert_close(stacked, expected, atol=1e-5, rtol=1e-5)
    summed = ms2d_half_res_scan(u, delta, A, B, C, D, bias, backend='torch')
    torch.testing.assert_close(summed, expected.sum(1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('change, message', [
    (dict(u=torch.randn(2, 6)), r'u must have shape \(batch, dim, seqlen\)'),
    (dict(delta=torch.randn(2, 6, 36)), r'delta must have the shape of u'),
    (dict(A=torch.randn(5, 1)), r'A must have shape \(dim=6, d_state\)'),
    (dict(B=torch.randn(2, 1, 1, 36)), r'B must have shape .*seqlen=37'),
    (dict(C=torch.randn(2, 4, 1, 37)), r'C has 4 groups, which do not divide dim=6'),
    (dict(D=torch.randn(5)), r'D must have shape \(dim=6,\)'),
])
def test_shape_errors(change, message):
    inputs = dict(make_inputs(requires_grad=False), **change)
    with pytest.raises(ValueError, match=message):
        selective_scan_fn(**inputs)


def test_unknown_backend_error():
    with pytest.raises(ValueError, match=r"unknown selective-scan backend 'fast' \(backend=\); choose one of"):
        selective_scan_fn(**make_inputs(requires_grad=False), backend='fast')


def test_auto_backend_uses_torch_for_general_state():
    assert resolve_backend('auto', torch.device('cpu'), d_state=4) == 'torch'
