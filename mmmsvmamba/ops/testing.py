"""Testing helpers for the selective-scan ops, like :mod:`torch.testing`: inputs, tolerances, comparisons, and the
CUDA kernels on the emulated device.

* :func:`make_scan_inputs`: random inputs of either scan op with realistic ranges.
* :data:`TOLERANCES` and :func:`assert_scan_close`: how close a result must be to the float64 reference.
* :func:`selective_scan_emulated`, :func:`ms2d_half_res_scan_emulated`: the compiled CUDA kernels, run on the
  emulated CUDA device of ``csrc/emulated_cuda/`` for CPU tensors (test-only extension ``mmmsvmamba._C_emulated``,
  built with ``MMMSVMAMBA_WITH_EMULATED=1``). Differentiable; same arguments and results as
  :func:`mmmsvmamba.ops.compiled.selective_scan_compiled` and ``ms2d_half_res_scan_compiled``, with outputs and
  gradients in the same memory layout (channel axis innermost).
"""
from typing import Optional, Sequence

import torch

from . import compiled
from .dtypes import compute_dtype

__all__ = ['INPUT_NAMES', 'TOLERANCES', 'assert_scan_close', 'emulated_ops', 'make_scan_inputs',
           'ms2d_half_res_scan_emulated', 'selective_scan_emulated', 'set_emulated_multiprocessors']

INPUT_NAMES = ('u', 'delta', 'A', 'B', 'C', 'D', 'delta_bias')

# (rtol, atol as a fraction of the largest reference magnitude), chosen by the dtype of the result that is
# compared. The reference runs in float64 on the same (rounded) inputs, so these bound an implementation's own
# error: float32 arithmetic (every path computes half-precision inputs in float32, so outputs, which are float32,
# are held to the float32 row), plus one rounding to the input dtype for the gradients of half-precision inputs.
TOLERANCES = {
    torch.float64: (1e-9, 1e-10),
    torch.float32: (1e-4, 2e-5),
    torch.float16: (4e-3, 2e-3),
    torch.bfloat16: (3e-2, 1e-2),
}


def make_scan_inputs(batch: int, dim: int, spatial: Sequence[int], *, groups: int = 1, d_state: int = 1,
                     dtype: torch.dtype = torch.float32, device='cpu', seed: int = 0, with_D: bool = True,
                     with_bias: bool = True, channels_last: bool = False, requires_grad: bool = False) -> dict:
    """Random scan inputs: u, delta (batch, dim, *spatial); A (dim, d_state); B, C (batch, groups, d_state, *spatial);
    D, delta_bias (dim,) or None.

    ``spatial`` is (L,) for the sequence op and (Hb, Wb) for the half-res op. u, delta, B and C are in ``dtype``;
    A, D and delta_bias in float32 (float64 for float64 inputs), as the model passes them. delta is centred at -1
    (softplus about 0.3) and A = -exp(N(0, 0.25)), so the decays are those of a trained model. ``channels_last``
    stores u, delta, B and C with the channel (group) axis innermost, as the model's activations are. The values
    depend only on ``seed`` and the shapes, not on the device or the layout.
    """
    gen = torch.Generator().manual_seed(seed)
    param_dtype = compute_dtype(dtype)

    def rand(*shape, dtype=dtype, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale + shift).to(device, dtype)

    def layout(t):
        return t.movedim(1, -1).contiguous().movedim(-1, 1) if channels_last else t

    inputs = dict(
        u=layout(rand(batch, dim, *spatial)),
        delta=layout(rand(batch, dim, *spatial, scale=0.5, shift=-1.0)),
        A=-torch.exp(rand(dim, d_state, dtype=param_dtype, scale=0.5)),
        B=layout(rand(batch, groups, d_state, *spatial)),
        C=layout(rand(batch, groups, d_state, *spatial)),
        D=rand(dim, dtype=param_dtype) if with_D else None,
        delta_bias=rand(dim, dtype=param_dtype, scale=0.3) if with_bias else None,
    )
    if requires_grad:
        inputs = {k: v.requires_grad_() if v is not None else None for k, v in inputs.items()}
    return inputs


def assert_scan_close(actual: torch.Tensor, expected: torch.Tensor, dtype: Optional[torch.dtype] = None,
                      name: str = '') -> None:
    """Assert that ``actual`` matches the float64 reference ``expected`` under ``TOLERANCES[dtype]`` (by default
    the dtype of ``actual``), the absolute tolerance scaled by the largest reference magnitude."""
    rtol, atol = TOLERANCES[dtype or actual.dtype]
    expected = expected.detach().to('cpu', torch.float64)
    scale = expected.abs().max().item() if expected.numel() else 1.0
    torch.testing.assert_close(actual.detach().to('cpu', torch.float64), expected, rtol=rtol,
                               atol=atol * max(scale, 1e-6), msg=lambda m: f'{name}: {m}' if name else m)


def emulated_ops():
    """``torch.ops.mmmsvmamba_emulated``: the four scan ops of the CUDA kernels on the emulated device.

    Raises a RuntimeError that says how to build it when ``mmmsvmamba._C_emulated`` is not built.
    """
    if not compiled.load_emulated():
        raise RuntimeError(
            f'the emulated CUDA device is not built ({compiled.LOAD_ERRORS.get(compiled.EMULATED_EXTENSION)}): '
            'build it with `MMMSVMAMBA_WITH_EMULATED=1 python setup.py build_ext --inplace` (`make build` sets it)')
    return getattr(torch.ops, compiled.EMULATED_NAMESPACE)


def selective_scan_emulated(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                            C: torch.Tensor, D: Optional[torch.Tensor] = None,
                            delta_bias: Optional[torch.Tensor] = None, delta_softplus: bool = False,
                            out_float: bool = True) -> torch.Tensor:
    """The sequence scan by the CUDA kernels on the emulated device; CPU tensors, shapes as selective_scan_fn."""
    return emulated_ops().selective_scan_fwd(u, delta, A, B, C, D, delta_bias, delta_softplus, out_float)


def ms2d_half_res_scan_emulated(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                                C: torch.Tensor, D: Optional[torch.Tensor] = None,
                                delta_bias: Optional[torch.Tensor] = None, delta_softplus: bool = True,
                                sum_routes: bool = True, out_float: bool = True) -> torch.Tensor:
    """The half-res scan by the CUDA kernels on the emulated device; CPU tensors, shapes as ms2d_half_res_scan."""
    return emulated_ops().ms2d_half_res_scan_fwd(u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes,
                                                 out_float)


class set_emulated_multiprocessors:
    """Context manager: the emulated device reports ``count`` multiprocessors inside the block (132 otherwise, or
    ``MMMSVMAMBA_EMULATED_SMS``), so that ``plan_chunks`` plans the chunks of a GPU of that size."""

    def __init__(self, count: int):
        self.count = count

    def __enter__(self):
        self.previous = emulated_ops()._set_multiprocessors(self.count)
        return self

    def __exit__(self, *exc):
        emulated_ops()._set_multiprocessors(self.previous)
