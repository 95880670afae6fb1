"""Devices and helpers of the compiled-op tests (tests/ops/test_compiled*.py).

Devices: 'cpu' (the CPU kernels), 'cuda' (the CUDA kernels on a GPU; skipped without one) and 'emulated' (the same
CUDA kernels on the emulated CUDA device, for CPU tensors; see mmmsvmamba.ops.testing). Every CUDA case has an
emulated twin. Without mmmsvmamba._C_emulated the emulated cases fail and say how to build it, unless
MMMSVMAMBA_WITH_EMULATED=0 says it was not wanted (then they skip).
"""
import os

import pytest
import torch

from mmmsvmamba.ops import compiled, ms2d_half_res_scan, selective_scan_fn
from mmmsvmamba.ops import testing as scan_testing
from mmmsvmamba.ops.testing import INPUT_NAMES, assert_scan_close, make_scan_inputs  # noqa: F401

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
EMULATED = 'emulated'
DEVICES = ['cpu', pytest.param('cuda', marks=CUDA), EMULATED]
# (device, dtype) pairs the compiled kernels accept: CPU computes float64 in float64, CUDA has no float64 kernel
DEVICE_DTYPES = [('cpu', torch.float32), ('cpu', torch.float64), ('cpu', torch.bfloat16),
                 pytest.param('cuda', torch.float32, marks=CUDA), pytest.param('cuda', torch.float16, marks=CUDA),
                 pytest.param('cuda', torch.bfloat16, marks=CUDA),
                 (EMULATED, torch.float32), (EMULATED, torch.float16), (EMULATED, torch.bfloat16)]
CUDA_KERNEL_DEVICES = [pytest.param('cuda', marks=CUDA), EMULATED]  # the devices that run the CUDA kernels
SEQUENCE, HALF_RES = 'sequence', 'half_res'


def tensor_device(device: str) -> str:
    """Where a test's tensors live: the emulated device takes CPU tensors."""
    return 'cpu' if device == EMULATED else device


def require_emulated():
    """The emulated ops, or a failure that says how to build them (a skip if MMMSVMAMBA_WITH_EMULATED=0)."""
    if not compiled.load_emulated():
        if os.environ.get('MMMSVMAMBA_WITH_EMULATED') == '0':
            pytest.skip('MMMSVMAMBA_WITH_EMULATED=0: the emulated CUDA device was not requested')
        pytest.fail(f'the emulated CUDA device is not built ({compiled.LOAD_ERRORS.get(compiled.EMULATED_EXTENSION)}); '
                    'build it with `make build` or `MMMSVMAMBA_WITH_EMULATED=1 python setup.py build_ext --inplace`')
    return scan_testing.emulated_ops()


def make_inputs(batch, dim, spatial, *, device='cpu', **kwargs):
    """make_scan_inputs on the tensors' device of ``device`` ('emulated': CPU)."""
    return make_scan_inputs(batch, dim, spatial, device=tensor_device(device), **kwargs)


def run_scan(kind, inputs, backend, delta_softplus=True, sum_routes=True, device=None):
    """One scan op (SEQUENCE or HALF_RES) through its public entry point with ``backend``; on the emulated device,
    backend='compiled' runs the CUDA kernels there instead."""
    if device == EMULATED and backend == 'compiled':
        require_emulated()
        if kind == SEQUENCE:
            return scan_testing.selective_scan_emulated(**inputs, delta_softplus=delta_softplus)
        return scan_testing.ms2d_half_res_scan_emulated(**inputs, delta_softplus=delta_softplus,
                                                        sum_routes=sum_routes)
    if kind == SEQUENCE:
        return selective_scan_fn(**inputs, delta_softplus=delta_softplus, backend=backend)
    return ms2d_half_res_scan(**inputs, delta_softplus=delta_softplus, sum_routes=sum_routes, backend=backend)


def compiled_ops(device):
    """The op namespace whose kernels serve ``device``."""
    return require_emulated() if device == EMULATED else torch.ops.mmmsvmamba
