"""Selective scan (the S6 recurrence of Mamba) as MSVMamba uses it: definition, PyTorch paths, dispatch.

For batch b, channel d (group g = d // (D / G)) and position t = 0 .. L-1, with h_{-1} = 0
(the recurrence of every official implementation; mamba-ssm's interface and shapes)::

    delta_t = softplus(delta_t + delta_bias_d)       (only if delta_softplus; threshold 20)
    h_t     = exp(delta_t * A_d) * h_{t-1} + delta_t * B_{g,t} * u_t          (vector over N)
    y_t     = sum_n C_{g,t,n} * h_{t,n} + D_d * u_t

Shapes: ``u``, ``delta`` (B, D, L); ``A`` (D, N); ``B``, ``C`` (B, G, N, L); ``D``, ``delta_bias`` (D,).
The result is (B, D, L) in float32 (float64 for float64 inputs): like the official "oflex" kernel with
``out_float=True``, half-precision inputs give a float32 output, because fp16 scan outputs overflow in training.

Implementations, all computing the same function:

* :func:`selective_scan_ref`: a sequential loop over L. The definition; slow; used by tests.
* ``'torch'``: a log-depth (Hillis-Steele) parallel scan in plain PyTorch, differentiable by autograd. It only
  multiplies decays ``exp(delta * A)`` in (0, 1], so it is as stable as the sequential loop.
* ``'compiled'``: the C++/CUDA kernels in ``csrc/`` (see :mod:`mmmsvmamba.ops.compiled`), when built.

:func:`selective_scan_fn` is the one entry point; it picks the backend.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .backend import ScanCall, observed, resolve_backend
from .dtypes import compute_dtype

__all__ = ['selective_scan_fn', 'selective_scan_ref', 'check_scan_inputs']


def check_scan_inputs(u, delta, A, B, C, D=None, delta_bias=None):
    """Raise a ValueError naming the first input whose shape does not fit the others."""
    if u.dim() != 3:
        raise ValueError(f'u must have shape (batch, dim, seqlen), got {tuple(u.shape)}')
    batch, dim, seqlen = u.shape
    if delta.shape != u.shape:
        raise ValueError(f'delta must have the shape of u {tuple(u.shape)}, got {tuple(delta.shape)}')
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f'A must have shape (dim={dim}, d_state), got {tuple(A.shape)}')
    d_state = A.shape[1]
    for name, t in (('B', B), ('C', C)):
        if t.dim() != 4 or t.shape[0] != batch or t.shape[2] != d_state or t.shape[3] != seqlen:
            raise ValueError(f'{name} must have shape (batch={batch}, groups, d_state={d_state}, seqlen={seqlen}), '
                             f'got {tuple(t.shape)}')
        if dim % t.shape[1] != 0:
            raise ValueError(f'{name} has {t.shape[1]} groups, which do not divide dim={dim}')
    if B.shape[1] != C.shape[1]:
        raise ValueError(f'B and C must have the same number of groups, got {B.shape[1]} and {C.shape[1]}')
    for name, t in (('D', D), ('delta_bias', delta_bias)):
        if t is not None and tuple(t.shape) != (dim,):
            raise ValueError(f'{name} must have shape (dim={dim},), got {tuple(t.shape)}')


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    """Upcast and broadcast to (B, D, L, N) decays and inputs of the recurrence h_t = a_t * h_{t-1} + x_t."""
    dtype = compute_dtype(u.dtype)
    u, delta, A = u.to(dtype), delta.to(dtype), A.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    repeat = u.shape[1] // B.shape[1]
    B = B.to(dtype).repeat_interleave(repeat, dim=1)  # (B, D, N, L)
    C = C.to(dtype).repeat_interleave(repeat, dim=1)
    decay = torch.exp(delta[..., None] * A[:, None, :])  # (B, D, L, N)
    drive = (delta * u)[..., None] * B.transpose(-1, -2)  # (B, D, L, N)
    return u, decay, drive, C


def _finish(u, h, C, D):
    """y_t = sum_n C_t,n h_t,n + D u_t with h (B, D, L, N), C (B, D, N, L)."""
    y = torch.einsum('bdln,bdnl->bdl', h, C)
    if D is not None:
        y = y + u * D.to(u.dtype)[:, None]
    return y


def selective_scan_ref(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """The definition: a sequential loop over the sequence. Shapes and semantics as in the module docstring."""
    check_scan_inputs(u, delta, A, B, C, D, delta_bias)
    u, decay, drive, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    h = torch.zeros_like(drive[:, :, 0])
    states = []
    for t in range(u.shape[-1]):
        h = decay[:, :, t] * h + drive[:, :, t]
        states.append(h)
    return _finish(u, torch.stack(states, dim=2), C, D)


def linear_recurrence(decay: torch.Tensor, drive: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """h_t = decay_t * h_{t-1} + drive_t along ``dim`` with h_{-1} = 0, in log2(L) vectorised steps.

    Hillis-Steele doubling: after the step with offset k, (decay_t, drive_t) describe the composition of the
    2k steps ending at t. Both inputs have the same shape; so has the result.
    """
    length = decay.shape[dim]
    offset = 1
    while offset < length:
        head = decay.narrow(dim, offset, length - offset)
        drive = torch.cat([drive.narrow(dim, 0, offset),
                           drive.narrow(dim, offset, length - offset) + head * drive.narrow(dim, 0, length - offset)],
                          dim=dim)
        decay = torch.cat([decay.narrow(dim, 0, offset), head * decay.narrow(dim, 0, length - offset)], dim=dim)
        offset *= 2
    return drive


def _selective_scan_torch(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    u, decay, drive, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    return _finish(u, linear_recurrence(decay, drive, dim=2), C, D)


def selective_scan_fn(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                      D: Optional[torch.Tensor] = None, delta_bias: Optional[torch.Tensor] = None,
                      delta_softplus: bool = False, *, backend: Optional[str] = None) -> torch.Tensor:
    """Differentiable selective scan; see the module docstring for the math and shapes.

    The arguments are those of mamba-ssm's ``selective_scan_fn`` without the ``z`` gate and ``return_last_state``
    (MSVMamba gates outside the scan and never needs the last state).

    Args:
        backend: ``None`` or ``'auto'`` uses the compiled kernels when they are built for the inputs' device and
            the PyTorch path otherwise (warning once). ``'torch'``, ``'reference'`` or ``'compiled'`` force one;
            forcing ``'compiled'`` when it is not built raises an error that says how to build it.
            ``mmmsvmamba.ops.use_backend`` and ``MMMSVMAMBA_SCAN_BACKEND`` set the default.

    Returns:
        (B, D, L) float32 (float64 for float64 inputs).
    """
    check_scan_inputs(u, delta, A, B, C, D, delta_bias)
    chosen = resolve_backend(backend, u.device, A.shape[1], u.dtype)

    def call():
        return ScanCall('selective_scan', chosen, u.shape[0], u.shape[1], u.shape[2], A.shape[1], D is not None)

    with observed(call):
        return run_backend(chosen, u, delta, A, B, C, D, delta_bias, delta_softplus)


def run_backend(backend: str, u, delta, A, B, C, D, delta_bias, delta_softplus) -> torch.Tensor:
    """The scan of validated sequence inputs with a resolved ``backend`` (no dispatch policy, no observers)."""
    if backend == 'compiled':
        from .compiled import selective_scan_compiled
        return selective_scan_compiled(u, delta, A, B, C, D, delta_bias, delta_softplus)
    if backend == 'reference':
        return selective_scan_ref(u, delta, A, B, C, D, delta_bias, delta_softplus)
    return _selective_scan_torch(u, delta, A, B, C, D, delta_bias, delta_softplus)
