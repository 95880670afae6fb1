"""The half-resolution branch of the MS2D scan: three scan directions over one map, one continuing state.

From a map ``x (B, C, Hb, Wb)`` the three route sequences of the official code are, concatenated in this order
into one sequence of length 3 * Hb * Wb that is scanned ONCE (the state carries from route to route):

* row-major flattened, then reversed            (horizontal, backward)
* column-major flattened, t = w * Hb + h        (vertical, forward)
* column-major flattened, then reversed         (vertical, backward)

The scan output is cut back into the three routes, each is put back into (Hb, Wb) layout, and (for v3) they
are summed (the official merge). v1 normalises each route before summing, so it asks for them stacked.

:func:`ms2d_half_res_scan` takes maps, not sequences: the projections that produce delta, B and C are
per-position, so computing them once on the map equals computing them on each route sequence.
"""
from typing import Optional

import torch

from .backend import ScanCall, observed, resolve_backend
from .selective_scan import check_scan_inputs, run_backend

__all__ = ['half_res_routes', 'merge_half_res_routes', 'ms2d_half_res_scan']

NUM_ROUTES = 3


def half_res_routes(x: torch.Tensor) -> torch.Tensor:
    """(..., Hb, Wb) map -> (..., 3 * Hb * Wb) sequence of the three routes in scan order."""
    row_major = x.flatten(-2)
    col_major = x.transpose(-1, -2).flatten(-2)
    return torch.cat([row_major.flip(-1), col_major, col_major.flip(-1)], dim=-1)


def merge_half_res_routes(y: torch.Tensor, height: int, width: int, sum_routes: bool = True) -> torch.Tensor:
    """Undo :func:`half_res_routes`: (..., 3 * Hb * Wb) -> (..., Hb, Wb) summed, or (..., 3, Hb, Wb) stacked."""
    row_rev, col, col_rev = y.chunk(NUM_ROUTES, dim=-1)
    lead = y.shape[:-1]
    maps = [row_rev.flip(-1).reshape(*lead, height, width),
            col.reshape(*lead, width, height).transpose(-1, -2),
            col_rev.flip(-1).reshape(*lead, width, height).transpose(-1, -2)]
    if sum_routes:
        return maps[0] + maps[1] + maps[2]
    return torch.stack(maps, dim=-3)


def check_map_inputs(u, delta, B, C):
    if u.dim() != 4:
        raise ValueError(f'u must be a map of shape (batch, dim, Hb, Wb), got {tuple(u.shape)}')
    if delta.shape != u.shape:
        raise ValueError(f'delta must have the shape of u {tuple(u.shape)}, got {tuple(delta.shape)}')
    for name, t in (('B', B), ('C', C)):
        if t.dim() != 5 or t.shape[0] != u.shape[0] or t.shape[-2:] != u.shape[-2:]:
            raise ValueError(f'{name} must have shape (batch={u.shape[0]}, groups, d_state, Hb={u.shape[2]}, '
                             f'Wb={u.shape[3]}), got {tuple(t.shape)}')


def ms2d_half_res_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                       D: Optional[torch.Tensor] = None, delta_bias: Optional[torch.Tensor] = None,
                       delta_softplus: bool = True, sum_routes: bool = True, *,
                       backend: Optional[str] = None) -> torch.Tensor:
    """Scan the three half-resolution routes of a map with one continuing state and merge the result.

    Args:
        u, delta: (B, D, Hb, Wb) maps.
        A: (D, N). B, C: (B, G, N, Hb, Wb). D, delta_bias: (D,). As in :func:`selective_scan_fn`.
        sum_routes: True returns the sum of the three un-permuted routes, (B, D, Hb, Wb); False returns them
            stacked, (B, 3, D, Hb, Wb), in route order.
        backend: as in :func:`selective_scan_fn`; the compiled op reads the routes in place, without the
            flipped, transposed and concatenated copies the PyTorch path makes.

    Returns:
        float32 (float64 for float64 inputs) as described for ``sum_routes``.
    """
    check_map_inputs(u, delta, B, C)
    height, width = u.shape[-2:]
    chosen = resolve_backend(backend, u.device, A.shape[1], u.dtype)

    def call():
        return ScanCall('ms2d_half_res_scan', chosen, u.shape[0], u.shape[1], NUM_ROUTES * height * width,
                        A.shape[1], D is not None, (height, width), sum_routes)

    with observed(call):
        if chosen == 'compiled':
            from .compiled import ms2d_half_res_scan_compiled
            return ms2d_half_res_scan_compiled(u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes)
        routes = [half_res_routes(t) for t in (u, delta, B, C)]
        check_scan_inputs(routes[0], routes[1], A, routes[2], routes[3], D, delta_bias)
        y = run_backend(chosen, routes[0], routes[1], A, routes[2], routes[3], D, delta_bias, delta_softplus)
        y = merge_half_res_routes(y, height, width, sum_routes)
        return y if sum_routes else y.transpose(1, 2)
