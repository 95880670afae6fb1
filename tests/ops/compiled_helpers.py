"""Shared inputs and tolerances for the compiled-op tests (tests/ops/test_compiled*.py)."""
import pytest
import torch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
DEVICES = ['cpu', pytest.param('cuda', marks=CUDA)]
# (device, dtype) pairs the compiled kernels accept: CPU computes float64 in float64, CUDA has no float64 kernel
DEVICE_DTYPES = [('cpu', torch.float32), ('cpu', torch.float64), ('cpu', torch.bfloat16),
                 pytest.param('cuda', torch.float32, marks=CUDA), pytest.param('cuda', torch.float16, marks=CUDA),
                 pytest.param('cuda', torch.bfloat16, marks=CUDA)]
# rtol, and atol as a fraction of the largest reference magnitude. The reference runs in float64 on the same
# (rounded) inputs, so these bound the kernel's own error: float32 arithmetic, plus one rounding of each result
# to the input dtype for the gradients of half-precision inputs.
TOLERANCES = {
    torch.float64: (1e-9, 1e-10),
    torch.float32: (1e-4, 2e-5),
    torch.float16: (4e-3, 2e-3),
    torch.bfloat16: (3e-2, 1e-2),
}
INPUT_NAMES = ('u', 'delta', 'A', 'B', 'C', 'D', 'delta_bias')


def make_inputs(batch, dim, spatial, *, groups=1, dtype=torch.float32, device='cpu', seed=0, with_D=True,
                with_bias=True):
    """Random scan inputs with realistic ranges: u, delta (batch, dim, *spatial); B, C (batch, groups, 1, *spatial).

    ``spatial`` is (L,) for the sequence op and (Hb, Wb) for the half-res op. A, D and delta_bias are float32
    (float64 for float64 inputs), as the model passes them.
    """
    gen = torch.Generator().manual_seed(seed)
    param_dtype = torch.float64 if dtype == torch.float64 else torch.float32

    def rand(*shape, dtype=dtype, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale + shift).to(device, dtype)

    inputs = dict(
        u=rand(batch, dim, *spatial),
        delta=rand(batch, dim, *spatial, scale=0.5, shift=-1.0),
        A=-torch.exp(rand(dim, 1, dtype=param_dtype, scale=0.5)),
        B=rand(batch, groups, 1, *spatial),
        C=rand(batch, groups, 1, *spatial),
        D=rand(dim, dtype=param_dtype) if with_D else None,
        delta_bias=rand(dim, dtype=param_dtype, scale=0.3) if with_bias else None,
    )
    return inputs


def assert_close(actual, expected, dtype, name=''):
    """Compare with the float64 reference under the tolerance of ``dtype`` (atol scaled by |expected|max)."""
    rtol, atol = TOLERANCES[dtype]
    expected = expected.to(torch.float64)
    scale = expected.abs().max().item() if expected.numel() else 1.0
    torch.testing.assert_close(actual.to(torch.float64), expected, rtol=rtol, atol=atol * max(scale, 1e-6),
                               msg=lambda m: f'{name}: {m}')
