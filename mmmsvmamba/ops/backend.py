"""Which selective-scan implementation runs: the compiled kernels when built, else the PyTorch path.

One policy for every scan entry point (:func:`~mmmsvmamba.ops.selective_scan_fn` and
:func:`~mmmsvmamba.ops.ms2d_half_res_scan`):

* ``None``/``'auto'``: compiled if it is built for the device (and d_state == 1, the case the kernels are
  specialised for), otherwise ``'torch'`` with a single warning per device type.
* ``'compiled'``: compiled or a RuntimeError that says how to build it. Never a silent fallback.
* ``'torch'`` / ``'reference'``: the PyTorch paths (see :mod:`mmmsvmamba.ops.selective_scan`).

The environment variable ``MMMSVMAMBA_SCAN_BACKEND`` replaces ``None``.
"""
import os
import warnings

import torch

BACKENDS = ('auto', 'compiled', 'torch', 'reference')
BUILD_HINT = ('build it with `make build` (or `pip install --no-build-isolation -e .`) in the mmmsvmamba checkout; '
              '`python -m mmmsvmamba.ops.check` shows what is built')
_warned = set()


def compiled_available(device_type: str) -> bool:
    """True when the compiled extension is importable and has kernels for ``device_type``."""
    try:
        from . import compiled
    except ImportError:
        return False
    return compiled.has_kernel(device_type)


def resolve_backend(backend, device: torch.device, d_state: int = 1) -> str:
    backend = backend or os.environ.get('MMMSVMAMBA_SCAN_BACKEND') or 'auto'
    if backend not in BACKENDS:
        raise ValueError(f'unknown selective-scan backend {backend!r}; choose one of {BACKENDS}')
    if backend == 'compiled':
        if d_state != 1:
            raise RuntimeError(f'the compiled selective scan is specialised for d_state=1, got d_state={d_state}; '
                               "use backend='torch'")
        if not compiled_available(device.type):
            raise RuntimeError(f'the compiled selective-scan op is not built for {device.type}: {BUILD_HINT}')
        return 'compiled'
    if backend != 'auto' or d_state != 1:
        return 'torch' if backend == 'auto' else backend
    if compiled_available(device.type):
        return 'compiled'
    if device.type not in _warned:
        _warned.add(device.type)
        warnings.warn(f'mmmsvmamba: the compiled selective-scan op is not available for {device.type}; using the '
                      f'slower PyTorch path. To get it, {BUILD_HINT}.', stacklevel=3)
    return 'torch'
