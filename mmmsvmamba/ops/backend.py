"""Which selective-scan implementation runs: the compiled kernels when built, else the PyTorch path.

One policy for every scan entry point (:func:`~mmmsvmamba.ops.selective_scan_fn` and
:func:`~mmmsvmamba.ops.ms2d_half_res_scan`):

* ``None``/``'auto'``: compiled if it is built for the device and dtype (and d_state == 1, the case the kernels
  are specialised for), otherwise ``'torch'`` with a single warning per device type (eager mode only: under
  ``torch.compile`` the choice is traced without the warning, so that no graph break is introduced).
* ``'compiled'``: compiled or a RuntimeError that says how to build it. Never a silent fallback.
* ``'torch'`` / ``'reference'``: the PyTorch paths (see :mod:`mmmsvmamba.ops.selective_scan`).

The environment variable ``MMMSVMAMBA_SCAN_BACKEND`` replaces ``None``.
"""
import os
import warnings
from typing import Optional

import torch

BACKENDS = ('auto', 'compiled', 'torch', 'reference')
BUILD_HINT = ('build it with `make build` (or `pip install --no-build-isolation -e .`) in the mmmsvmamba checkout; '
              '`python -m mmmsvmamba.ops.check` shows what is built')
_warned = set()


def compiled_available(device_type: str, dtype: Optional[torch.dtype] = None) -> bool:
    """True when the compiled extension is built with kernels for ``device_type`` (accepting ``dtype``)."""
    from . import compiled
    return compiled.has_kernel(device_type, dtype)


def resolve_backend(backend, device: torch.device, d_state: int = 1, dtype: Optional[torch.dtype] = None) -> str:
    """The backend that runs a scan on ``device`` with ``d_state`` and inputs of ``dtype`` (see module doc)."""
    backend = backend or os.environ.get('MMMSVMAMBA_SCAN_BACKEND') or 'auto'
    if backend not in BACKENDS:
        raise ValueError(f'unknown selective-scan backend {backend!r}; choose one of {BACKENDS}')
    if backend == 'compiled':
        if d_state != 1:
            raise RuntimeError(f'the compiled selective scan is specialised for d_state=1, got d_state={d_state}; '
                               "use backend='torch'")
        if not compiled_available(device.type):
            raise RuntimeError(f'the compiled selective-scan op is not built for {device.type}: {BUILD_HINT}')
        if not compiled_available(device.type, dtype):
            raise RuntimeError(f'the compiled selective-scan op has no {device.type} kernel for {dtype} inputs; '
                               "use backend='torch'")
        return 'compiled'
    if backend != 'auto' or d_state != 1:
        return 'torch' if backend == 'auto' else backend
    if compiled_available(device.type, dtype):
        return 'compiled'
    if compiled_available(device.type):
        return 'torch'  # built, but not for this dtype (float64 on CUDA): nothing to warn about
    if device.type not in _warned and not torch.compiler.is_compiling():  # warn() would break a compiled graph
        _warned.add(device.type)
        warnings.warn(f'mmmsvmamba: the compiled selective-scan op is not available for {device.type}; using the '
                      f'slower PyTorch path. To get it, {BUILD_HINT}.', stacklevel=3)
    return 'torch'
