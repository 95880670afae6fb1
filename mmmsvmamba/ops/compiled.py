"""The compiled selective-scan ops of ``csrc/``: loading, fake kernels, autograd and Python entry points.

The C++ library ``mmmsvmamba`` defines four functional operators (schemas in
``csrc/selective_scan/selective_scan.cpp``), specialised for d_state = 1:

* ``torch.ops.mmmsvmamba.selective_scan_fwd(u, delta, A, B, C, D, delta_bias, delta_softplus, out_float)``
  u, delta (B, D, L); A (D, 1); B, C (B, G, 1, L); D, delta_bias (D,) or None -> y (B, D, L).
* ``torch.ops.mmmsvmamba.ms2d_half_res_scan_fwd(..., delta_softplus, sum_routes, out_float)`` on maps:
  u, delta (B, D, Hb, Wb); B, C (B, G, 1, Hb, Wb) -> (B, D, Hb, Wb) summed or (B, 3, D, Hb, Wb) stacked.
* ``*_bwd(dout, <forward inputs>, flags)`` -> (du, ddelta, dA, dB, dC, dD, ddelta_bias).

``y`` is float32 (float64 for float64 inputs) when ``out_float``, else in u's dtype. Kernels live in two
extensions built by ``setup.py``: ``mmmsvmamba._C`` (schemas + CPU, always built) and ``mmmsvmamba._C_cuda``
(CUDA, built when torch has CUDA and nvcc is found). This module loads whichever exist beside the imported
package (never another checkout's: an editable install elsewhere in the environment would otherwise supply the
binaries a checkout lacks); a missing one is recorded in :data:`LOAD_ERRORS`, not raised, the file of each loaded one
in :data:`LOADED`. Then it registers the fake kernels (so ``torch.compile`` and ``torch.export``
can trace the ops) and the autograd formulas (backward = the ``*_bwd`` op; no double backward).

A third, test-only extension, ``mmmsvmamba._C_emulated``, runs the CUDA kernels on the emulated CUDA device for CPU
tensors under the library ``mmmsvmamba_emulated``; :func:`load_emulated` loads it on request (see
:mod:`mmmsvmamba.ops.testing`), or its race-checking build ``mmmsvmamba._C_emulated_racecheck`` when the
environment sets ``MMMSVMAMBA_EMULATED_RACECHECK=1``. It is not a backend of the public entry points.
"""
import importlib
import importlib.machinery
import os
from pathlib import Path
from typing import Optional

import torch

from .dtypes import compute_dtype

__all__ = ['EXTENSIONS', 'LOAD_ERRORS', 'OPS', 'has_kernel', 'not_built_message', 'require',
           'selective_scan_compiled', 'ms2d_half_res_scan_compiled']

NAMESPACE = 'mmmsvmamba'
OPS = ('selective_scan_fwd', 'selective_scan_bwd', 'ms2d_half_res_scan_fwd', 'ms2d_half_res_scan_bwd')
# extension module -> dispatch key it provides; the CPU one also holds the schemas, so it is loaded first
EXTENSIONS = {'mmmsvmamba._C': 'CPU', 'mmmsvmamba._C_cuda': 'CUDA'}
# input dtypes each dispatch key's kernels accept
KERNEL_DTYPES = {
    'CPU': (torch.float32, torch.float64, torch.float16, torch.bfloat16),
    'CUDA': (torch.float32, torch.float16, torch.bfloat16),
}
LOAD_ERRORS = {}  # extension module -> why it was not loaded
LOADED = {}  # extension module -> the file it was loaded from
BUILD_HINT = ('build it with `make build` (or `pip install --no-build-isolation -e .`) in the mmmsvmamba checkout; '
              '`python -m mmmsvmamba.ops.check` shows what is built')


def extension_file(module: str) -> Optional[Path]:
    """The compiled file of extension ``module`` ('mmmsvmamba._C', ...) in the imported package's own folder, or
    None. Deliberately not importlib's search: that falls through to any other checkout installed in editable mode
    into the same environment."""
    package, _, name = module.rpartition('.')
    for folder in importlib.import_module(package).__path__:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(folder) / (name + suffix)
            if path.is_file():
                return path
    return None


def _load_extension(module: str) -> bool:
    path = extension_file(module)
    if path is None:
        folders = ', '.join(importlib.import_module(module.rpartition('.')[0]).__path__)
        LOAD_ERRORS[module] = f'not built (no {module.rpartition(".")[2]}.*.so in {folders})'
        return False
    try:
        torch.ops.load_library(str(path))
    except OSError as err:  # e.g. built against another torch, or a CUDA build loaded without the CUDA runtime
        LOAD_ERRORS[module] = f'{path} failed to load: {err}'
        return False
    LOADED[module] = str(path)
    return True


def _kernel_keys() -> tuple:
    """Dispatch keys for which every op has a kernel (computed once, so the dispatch is a constant lookup)."""
    loaded = [key for module, key in EXTENSIONS.items() if _load_extension(module)]
    if 'CPU' not in loaded:  # without the schemas no op exists at all
        return ()
    return tuple(key for key in loaded
                 if all(torch._C._dispatch_has_kernel_for_dispatch_key(f'{NAMESPACE}::{op}', key) for op in OPS))


KERNEL_KEYS = _kernel_keys()
_DEVICE_KEYS = {'cpu': 'CPU', 'cuda': 'CUDA'}


def has_kernel(device_type: str, dtype: Optional[torch.dtype] = None) -> bool:
    """True when the compiled ops have kernels for ``device_type`` (and accept inputs of ``dtype``, if given)."""
    key = _DEVICE_KEYS.get(device_type)
    if key not in KERNEL_KEYS:
        return False
    return dtype is None or dtype in KERNEL_DTYPES[key]


def not_built_message(device_type: str) -> str:
    return f'the compiled selective-scan op is not built for {device_type}: {BUILD_HINT}'


def require(device_type: str) -> None:
    """Raise a RuntimeError that says how to build the op unless it has kernels for ``device_type``."""
    if not has_kernel(device_type):
        raise RuntimeError(not_built_message(device_type))


def _scan_out_dtype(u: torch.Tensor, out_float: bool) -> torch.dtype:
    return compute_dtype(u.dtype) if out_float else u.dtype


def _new_output(like: torch.Tensor, shape: tuple, dtype: torch.dtype, channel_axis: int = 1) -> torch.Tensor:
    """An empty tensor in the memory layout the kernels return: the channel axis innermost (a permuted view of a
    contiguous tensor, see csrc/selective_scan), on every device, so that torch.compile knows the strides."""
    shape = tuple(shape)
    memory = shape[:channel_axis] + shape[channel_axis + 1:] + (shape[channel_axis],)
    return like.new_empty(memory, dtype=dtype).movedim(-1, channel_axis)


def _grads_like(u, delta, A, B, C, D, delta_bias):
    """Fake gradients: each in its input's shape and dtype, in the kernels' layout (du, ddelta as the output)."""
    compute = compute_dtype(u.dtype)
    dim = u.shape[1]
    return (_new_output(u, u.shape, u.dtype), _new_output(u, delta.shape, delta.dtype), A.new_empty(A.shape),
            B.new_empty(B.shape), C.new_empty(C.shape),
            D.new_empty(D.shape) if D is not None else u.new_empty((dim,), dtype=compute),
            delta_bias.new_empty(delta_bias.shape) if delta_bias is not None else u.new_empty((dim,), dtype=compute))


def _selective_scan_fwd_fake(u, delta, A, B, C, D, delta_bias, delta_softplus, out_float):
    return _new_output(u, u.shape, _scan_out_dtype(u, out_float))


def _selective_scan_bwd_fake(dout, u, delta, A, B, C, D, delta_bias, delta_softplus):
    return _grads_like(u, delta, A, B, C, D, delta_bias)


def _half_res_fwd_fake(u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes, out_float):
    batch, dim, height, width = u.shape
    if sum_routes:
        return _new_output(u, (batch, dim, height, width), _scan_out_dtype(u, out_float))
    return _new_output(u, (batch, 3, dim, height, width), _scan_out_dtype(u, out_float), channel_axis=2)


def _half_res_bwd_fake(dout, u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes):
    return _grads_like(u, delta, A, B, C, D, delta_bias)


def _setup_context(ctx, inputs, output):
    u, delta, A, B, C, D, delta_bias = inputs[:7]
    ctx.save_for_backward(u, delta, A, B, C, D, delta_bias)
    # recorded here because saved_tensors may be read only once (activation checkpointing enforces it)
    ctx.has_D, ctx.has_delta_bias = D is not None, delta_bias is not None
    ctx.flags = inputs[7:-1]  # delta_softplus, and sum_routes for the half-res op (out_float is not needed)


def _input_grads(ctx, grads):
    du, ddelta, dA, dB, dC, dD, ddelta_bias = grads
    return (du, ddelta, dA, dB, dC, dD if ctx.has_D else None,
            ddelta_bias if ctx.has_delta_bias else None) + (None,) * (len(ctx.flags) + 1)


def register_python_kernels(namespace: str) -> None:
    """Register the fake kernels and the autograd formulas of the four ops of the C++ library ``namespace``."""
    ops = getattr(torch.ops, namespace)

    def sequence_backward(ctx, dout):
        return _input_grads(ctx, ops.selective_scan_bwd(dout, *ctx.saved_tensors, *ctx.flags))

    def half_res_backward(ctx, dout):
        return _input_grads(ctx, ops.ms2d_half_res_scan_bwd(dout, *ctx.saved_tensors, *ctx.flags))

    torch.library.register_fake(f'{namespace}::selective_scan_fwd', _selective_scan_fwd_fake)
    torch.library.register_fake(f'{namespace}::selective_scan_bwd', _selective_scan_bwd_fake)
    torch.library.register_fake(f'{namespace}::ms2d_half_res_scan_fwd', _half_res_fwd_fake)
    torch.library.register_fake(f'{namespace}::ms2d_half_res_scan_bwd', _half_res_bwd_fake)
    torch.library.register_autograd(f'{namespace}::selective_scan_fwd', sequence_backward,
                                    setup_context=_setup_context)
    torch.library.register_autograd(f'{namespace}::ms2d_half_res_scan_fwd', half_res_backward,
                                    setup_context=_setup_context)


if KERNEL_KEYS:
    register_python_kernels(NAMESPACE)

# The CUDA kernels on the emulated device (csrc/emulated_cuda/): a test-only library on CPU tensors, not a backend.
# MMMSVMAMBA_EMULATED_RACECHECK=1: its race-checking build instead (make test-racecheck; the two register the same
# library, so a process loads one of them).
EMULATED_EXTENSION = ('mmmsvmamba._C_emulated_racecheck' if os.environ.get('MMMSVMAMBA_EMULATED_RACECHECK') == '1'
                      else 'mmmsvmamba._C_emulated')
EMULATED_NAMESPACE = 'mmmsvmamba_emulated'
_emulated_loaded = []  # [True] once loaded and registered


def load_emulated() -> bool:
    """Load ``mmmsvmamba._C_emulated`` (library ``mmmsvmamba_emulated``: the four ops of the CUDA kernels, run on
    the emulated device for CPU tensors, see mmmsvmamba.ops.testing) and register its fake kernels and autograd.

    Idempotent. Returns False, with the reason in :data:`LOAD_ERRORS`, when it was not built
    (``MMMSVMAMBA_WITH_EMULATED=1`` builds it, with ``MMMSVMAMBA_EMULATED_RACECHECK=1`` also the race-checking one).
    """
    if not _emulated_loaded:
        if not _load_extension(EMULATED_EXTENSION):
            return False
        register_python_kernels(EMULATED_NAMESPACE)
        _emulated_loaded.append(True)
    return True


def selective_scan_compiled(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                            C: torch.Tensor, D: Optional[torch.Tensor] = None,
                            delta_bias: Optional[torch.Tensor] = None, delta_softplus: bool = False,
                            out_float: bool = True) -> torch.Tensor:
    """Differentiable selective scan through the compiled op (d_state = 1); shapes as in the module docstring.

    Returns (B, D, L): float32 (float64 for float64 u) when ``out_float``, else u's dtype.
    """
    require(u.device.type)
    return torch.ops.mmmsvmamba.selective_scan_fwd(u, delta, A, B, C, D, delta_bias, delta_softplus, out_float)


def ms2d_half_res_scan_compiled(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                                C: torch.Tensor, D: Optional[torch.Tensor] = None,
                                delta_bias: Optional[torch.Tensor] = None, delta_softplus: bool = True,
                                sum_routes: bool = True, out_float: bool = True) -> torch.Tensor:
    """The three half-resolution routes of a map scanned with one state by the fused compiled op.

    u, delta (B, D, Hb, Wb); B, C (B, G, 1, Hb, Wb). Returns (B, D, Hb, Wb) when ``sum_routes``, else
    (B, 3, D, Hb, Wb) in route order; dtype as in :func:`selective_scan_compiled`.
    """
    require(u.device.type)
    return torch.ops.mmmsvmamba.ms2d_half_res_scan_fwd(u, delta, A, B, C, D, delta_bias, delta_softplus,
                                                       sum_routes, out_float)
