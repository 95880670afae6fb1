"""Which selective-scan implementation runs, and the seams to choose it and to watch the scans that run.

One policy for every scan entry point (:func:`~mmmsvmamba.ops.selective_scan_fn` and
:func:`~mmmsvmamba.ops.ms2d_half_res_scan`):

* ``None``/``'auto'``: compiled if it is built for the device and dtype (and d_state == 1, the case the kernels
  are specialised for), otherwise ``'torch'`` with a single warning per device type (eager mode only: under
  ``torch.compile`` the choice is traced without the warning, so that no graph break is introduced).
* ``'compiled'``: compiled or a RuntimeError that says how to build it. Never a silent fallback.
* ``'torch'`` / ``'reference'``: the PyTorch paths (see :mod:`mmmsvmamba.ops.selective_scan`).

A ``backend=`` argument wins; otherwise the innermost :func:`use_backend` block, then the environment variable
``MMMSVMAMBA_SCAN_BACKEND``, then ``'auto'``. :func:`observe_scans` lets a tool see every scan call (its shapes
and the backend that runs it) and wrap its execution, e.g. to count FLOPs analytically.

This module decides; :mod:`mmmsvmamba.ops.compiled` (the extension) knows what is built. The dependency goes
one way: this module imports ``compiled``, never the reverse.
"""
import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Optional, Tuple

import torch

from . import compiled

__all__ = ['BACKENDS', 'ScanCall', 'observe_scans', 'resolve_backend', 'use_backend']

BACKENDS = ('auto', 'compiled', 'torch', 'reference')
ENV_VAR = 'MMMSVMAMBA_SCAN_BACKEND'
# Process-wide, like torch.backends flags; plain lists (not ContextVars) so that dynamo can trace reading them.
_chosen = []  # the backends of the open use_backend() blocks, innermost last
_observers = []  # the callbacks of the open observe_scans() blocks
_warned = set()


def _check_name(backend: str, origin: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f'unknown selective-scan backend {backend!r} ({origin}); choose one of {BACKENDS}')
    return backend


@contextlib.contextmanager
def use_backend(backend: str) -> Iterator[None]:
    """Run the scans inside the block with ``backend`` unless a call passes its own ``backend=``.

    Example: ``with mmmsvmamba.ops.use_backend('torch'): model(x)``. Blocks nest; the innermost wins.
    """
    _chosen.append(_check_name(backend, 'use_backend'))
    try:
        yield
    finally:
        _chosen.pop()


def resolve_backend(backend: Optional[str], device: torch.device, d_state: int = 1,
                    dtype: Optional[torch.dtype] = None, warn: bool = True) -> str:
    """The backend that runs a scan on ``device`` with ``d_state`` and inputs of ``dtype`` (see module doc).

    ``warn=False`` answers the question without the one-time warning about a missing extension (for tools that
    report which backend would run).
    """
    if backend is None:
        backend = _chosen[-1] if _chosen else _check_name(os.environ.get(ENV_VAR) or 'auto', ENV_VAR)
    else:
        _check_name(backend, 'backend=')
    if backend == 'compiled':
        if d_state != 1:
            raise RuntimeError(f'the compiled selective scan is specialised for d_state=1, got d_state={d_state}; '
                               "use backend='torch'")
        compiled.require(device.type)
        if not compiled.has_kernel(device.type, dtype):
            raise RuntimeError(f'the compiled selective-scan op has no {device.type} kernel for {dtype} inputs; '
                               "use backend='torch'")
        return 'compiled'
    if backend != 'auto' or d_state != 1:
        return 'torch' if backend == 'auto' else backend
    if compiled.has_kernel(device.type, dtype):
        return 'compiled'
    if compiled.has_kernel(device.type):
        return 'torch'  # built, but not for this dtype (float64 on CUDA): nothing to warn about
    # warn() would break a compiled graph; the meta device (shape-only runs) has no kernels by design
    if warn and device.type not in _warned and device.type != 'meta' and not torch.compiler.is_compiling():
        _warned.add(device.type)
        warnings.warn(f'mmmsvmamba: {compiled.not_built_message(device.type)}; using the slower PyTorch path',
                      stacklevel=3)
    return 'torch'


@dataclass(frozen=True)
class ScanCall:
    """One call of a scan entry point, as :func:`observe_scans` callbacks see it.

    ``op`` is ``'selective_scan'`` (u of shape (batch, dim, length)) or ``'ms2d_half_res_scan'`` (u of shape
    (batch, dim, *map_size), scanned as 3 * Hb * Wb positions); ``length`` is the number of scanned positions
    per (batch, channel) row.
    """
    op: str
    backend: str
    batch: int
    dim: int
    length: int
    d_state: int
    with_D: bool
    map_size: Optional[Tuple[int, int]] = None
    sum_routes: Optional[bool] = None


@contextlib.contextmanager
def observe_scans(callback: Callable[[ScanCall], Optional[ContextManager]]) -> Iterator[None]:
    """Call ``callback(call)`` before every scan inside the block; a context manager it returns wraps the scan.

    Example (count calls and hide the scan's own ATen ops from an enclosing dispatch mode)::

        with observe_scans(lambda call: calls.append(call) or counter.paused()):
            model(x)
    """
    _observers.append(callback)
    try:
        yield
    finally:
        _observers.remove(callback)


def observed(call_factory: Callable[[], ScanCall]) -> ContextManager:
    """The context the entry points run a scan in: the observers' contexts, or nothing when none is open.

    ``call_factory`` builds the :class:`ScanCall` only when someone observes (not on the hot path).
    """
    if not _observers:
        return contextlib.nullcontext()
    call = call_factory()
    stack = contextlib.ExitStack()
    for callback in list(_observers):
        context = callback(call)
        if context is not None:
            stack.enter_context(context)
    return stack
