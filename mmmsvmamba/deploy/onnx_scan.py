"""ONNX translations of the two compiled scan ops, built from standard ONNX operators (no custom-op library).

``torch.onnx.export(..., dynamo=True)`` sees ``mmmsvmamba::selective_scan_fwd`` and
``mmmsvmamba::ms2d_half_res_scan_fwd`` as opaque nodes of the exported program (their fake kernels give the
shapes); :func:`translation_table` tells the exporter how to write each one as ONNX. The math is the op's
(:func:`mmmsvmamba.ops.selective_scan_ref`), per batch b, channel d, group g, position t::

    dt_t = softplus(delta_t + delta_bias_d)     (if delta_softplus; torch returns x above 20, and so do we)
    h_t  = exp(dt_t A_d) h_{t-1} + dt_t B_{g,t} u_t,   h_{-1} = 0
    y_t  = C_{g,t} h_t + D_d u_t                       (float32)

The recurrence is evaluated as a chunked scan (docs/deploy.md has the measurements behind the choice):

1. ``log a = dt A`` (no log is taken) and ``x = dt B u`` are computed for the whole sequence; the sequence is padded
   to a multiple of :data:`CHUNK` positions (``log a = 0``, ``x = 0``: padding at the end changes nothing before it)
   and viewed as (..., chunks, CHUNK).
2. Inside each chunk, h is advanced sequentially from a zero state, unrolled: CHUNK steps of one Mul and one Add on
   (..., chunks) slices, all chunks at once. The decay accumulated since the chunk start is
   ``exp(cumsum(log a))``, which only multiplies factors in (0, 1] (no ``exp(-cumsum)``: it overflows as soon as
   the log-decay of a chunk passes -88, and trained channels reach -50 per step).
3. Across chunks, the (decay, end state) summaries are combined by a Hillis-Steele scan of :data:`DOUBLINGS`
   doubling steps (each a shift by Pad + Slice, a Mul and an Add). The count is fixed at export, so the graph is
   exact for sequences of up to ``CHUNK * 2**DOUBLINGS`` positions (:data:`MAX_LENGTH`); extra steps on a shorter
   sequence only combine with zeros.
4. ``h = h_local + decay_since_chunk_start * state_entering_chunk``, then ``y = C h + D u``.

The half-resolution op builds its three routes (row-major reversed, column-major, column-major reversed; see
:mod:`mmmsvmamba.ops.ms2d_routes`) with Reshape, Transpose and reversing Slices, scans them as ONE sequence, and
merges them back. Only ``log a`` and ``x`` are routed: C and D act per map position, so they are applied after the
merge (``y = C * sum_routes(h) + 3 D u`` when the routes are summed).
"""
from typing import Callable, Optional

import numpy as np
import onnx_ir as ir
import torch
from onnxscript import FLOAT
from onnxscript import opset20 as op

__all__ = ['CHUNK', 'DOUBLINGS', 'MAX_LENGTH', 'OPSET', 'translation_table', 'linear_recurrence', 'doubling_scan',
           'to_chunks', 'unrolled_chunks']

OPSET = 20  # the ai.onnx opset of the exported files (torch 2.14's default); onnxruntime >= 1.17 runs it
CHUNK = 16  # positions scanned sequentially inside a chunk (unrolled into the graph)
DOUBLINGS = 14  # Hillis-Steele steps across chunks
MAX_LENGTH = CHUNK * 2**DOUBLINGS  # 262144: a full-res stage-1 map of 2048 x 2048 pixels; half-res routes fit 3x less
_INT64_MIN = np.iinfo(np.int64).min


def _ints(*values) -> ir.Value:
    return op.Constant(value=ir.tensor(np.array(values, dtype=np.int64)))


def _scalar(value: float) -> ir.Value:
    return op.Constant(value=ir.tensor(np.array(value, dtype=np.float32)))


def _shift(x, rank: int, axis: int, amount, length=None, pads=None):
    """x (of ``rank`` axes) shifted by ``amount`` (a 1-element int64 value, at most the axis length) towards
    higher indices along ``axis``, zeros entering first. ``length`` (the axis length) and ``pads`` (the Pad
    amounts) may be passed in when several shifts share them, to save their nodes."""
    if pads is None:
        pads = op.Concat(_ints(*([0] * axis)), amount, _ints(*([0] * (2 * rank - axis - 1))), axis=0)
    if length is None:
        length = op.Shape(x, start=axis, end=axis + 1)
    return op.Slice(op.Pad(x, pads), _ints(0), length, _ints(axis))


def _reverse(x, axis: int = -1):
    return op.Slice(x, _ints(-1), _ints(_INT64_MIN), _ints(axis), _ints(-1))


def _per_channel(vector, extra_dims: int):
    """(D,) parameter -> (D, 1, ...) broadcasting over ``extra_dims`` trailing axes."""
    return op.Unsqueeze(vector, _ints(*range(1, extra_dims + 1)))


def _softplus(x):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), from vectorised elementwise operators.

    onnxruntime's ``Softplus`` kernel is scalar (it took a third of a scan's time), and it has no threshold. This
    form cannot overflow, and above torch's threshold of 20 it returns x (exp(-20) is below half an ulp of 20).
    log1p(e) for e = exp(-|x|) in (0, 1] is computed as log(u) - ((u - 1) - e) / u with u = 1 + e: the second
    term removes the rounding of u, keeping the result within a few ulp also for small e.
    """
    e = op.Exp(op.Neg(op.Abs(x)))
    u = op.Add(e, _scalar(1.0))
    log1p = op.Sub(op.Log(u), op.Div(op.Sub(op.Sub(u, _scalar(1.0)), e), u))
    return op.Add(op.Relu(x), log1p)


def _grouped_shape(x, groups: int, dim: int):
    """(batch, D, *positions) -> (batch, G, D / G, *positions), the view in which (batch, G, 1, ...) broadcasts."""
    return op.Concat(op.Shape(x, start=0, end=1), _ints(groups, dim // groups), op.Shape(x, start=2), axis=0)


def _discretize(u, delta, A, B, delta_bias, delta_softplus: bool, groups: int, dim: int):
    """log decay ``dt A`` and drive ``dt B u``, float32, in u's shape (B, D, *positions).

    ``B`` is (batch, G, 1, *positions); with G > 1 the channels are viewed as (G, D / G) to broadcast it.
    """
    spatial = len(u.shape) - 2
    u = op.Cast(u, to=ir.DataType.FLOAT)
    dt = op.Cast(delta, to=ir.DataType.FLOAT)
    if delta_bias is not None:
        dt = op.Add(dt, _per_channel(op.Cast(delta_bias, to=ir.DataType.FLOAT), spatial))
    if delta_softplus:
        dt = _softplus(dt)
    log_decay = op.Mul(dt, op.Reshape(op.Cast(A, to=ir.DataType.FLOAT), _ints(dim, *([1] * spatial))))
    B = op.Cast(B, to=ir.DataType.FLOAT)
    if groups == 1:
        drive = op.Mul(op.Mul(dt, u), op.Squeeze(B, _ints(2)))
    else:
        drive = op.Reshape(op.Mul(op.Reshape(op.Mul(dt, u), _grouped_shape(u, groups, dim)), B), op.Shape(u))
    return u, log_decay, drive


def _apply_c(h, C, groups: int, dim: int, squeeze_axis: int = 2):
    """C (batch, G, 1, *positions) times the states h (batch, D, *positions)."""
    C = op.Cast(C, to=ir.DataType.FLOAT)
    if groups == 1:
        return op.Mul(h, op.Squeeze(C, _ints(squeeze_axis)))
    return op.Reshape(op.Mul(op.Reshape(h, _grouped_shape(h, groups, dim)), C), op.Shape(h))


def doubling_scan(decay, state, rank: int, axis: int, steps: int):
    """Hillis-Steele along ``axis``: after step k, ``state`` holds the recurrence over the 2**(k+1) positions
    ending at each index (exact for axis lengths up to 2**steps). Shifts are by min(2**k, length), so tensors keep
    their length however long a shift the fixed step count asks for."""
    length = op.Shape(state, start=axis, end=axis + 1)
    for step in range(steps):
        offset = op.Min(_ints(2**step), length)
        pads = op.Concat(_ints(*([0] * axis)), offset, _ints(*([0] * (2 * rank - axis - 1))), axis=0)
        state = op.Add(state, op.Mul(decay, _shift(state, rank, axis, offset, length, pads)))
        if step < steps - 1:
            decay = op.Mul(decay, _shift(decay, rank, axis, offset, length, pads))
    return state


def to_chunks(log_decay, drive, chunk: int):
    """(batch, D, L) -> (batch, D, ceil(L / chunk), chunk), padded with log decay 0 and drive 0 (changing nothing
    before the padding), and the length L."""
    length = op.Shape(drive, start=-1)
    padding = op.Mod(op.Sub(_ints(chunk), op.Mod(length, _ints(chunk))), _ints(chunk))
    pads = op.Concat(_ints(0, 0, 0, 0, 0), padding, axis=0)
    chunks = _ints(0, 0, -1, chunk)
    return op.Reshape(op.Pad(log_decay, pads), chunks), op.Reshape(op.Pad(drive, pads), chunks), length


def unrolled_chunks(decay, drive, chunk: int):
    """Step 2: the recurrence inside each chunk of (batch, D, n, chunk) values from a zero state, sequential and
    unrolled over the chunk's positions (one Mul and one Add on (batch, D, n) slices each), all chunks at once.
    Returns the states (batch, D, n, chunk) and those at the chunk ends (batch, D, n, 1)."""
    decays = op.Split(decay, axis=3, num_outputs=chunk)
    drives = op.Split(drive, axis=3, num_outputs=chunk)
    state = drives[0]
    local = [state]
    for t in range(1, chunk):
        state = op.Add(op.Mul(decays[t], state), drives[t])
        local.append(state)
    return op.Concat(*local, axis=3), state


def linear_recurrence(log_decay, drive, chunk: int = CHUNK, doublings: int = DOUBLINGS):
    """h_t = exp(log_decay_t) h_{t-1} + drive_t along the last axis of two (batch, D, L) float32 values, h_{-1} = 0.

    The chunked scan of the module docstring; exact for L <= ``chunk * 2**doublings``.
    """
    log_decay, drive, length = to_chunks(log_decay, drive, chunk)  # (batch, D, n, chunk)
    decay = op.Exp(log_decay)
    since_start = op.Exp(op.CumSum(log_decay, _ints(3)))  # decay from the chunk start through position t

    local, state = unrolled_chunks(decay, drive, chunk)

    # 3. across chunks: (decay, end state) of each chunk, Hillis-Steele over the chunk axis
    chunk_decay = op.Slice(since_start, _ints(chunk - 1), _ints(chunk), _ints(3))  # (batch, D, n, 1)
    chunk_state = doubling_scan(chunk_decay, state, 4, 2, doublings)
    entering = _shift(chunk_state, 4, 2, _ints(1))  # the state at the end of the previous chunk

    # 4. every position: its local state plus the entering state decayed to it
    h = op.Add(local, op.Mul(since_start, entering))
    h = op.Reshape(h, _ints(0, 0, -1))
    return op.Slice(h, _ints(0), length, _ints(2))


def _output(y, u, out_float: bool):
    return y if out_float else op.CastLike(y, u)


def _selective_scan(recurrence, u, delta, A, B, C, D, delta_bias, delta_softplus: bool, out_float: bool):
    dim, groups = A.shape[0], B.shape[1]
    u_in = u
    u, log_decay, drive = _discretize(u, delta, A, B, delta_bias, delta_softplus, groups, dim)
    y = _apply_c(recurrence(log_decay, drive), C, groups, dim)
    if D is not None:
        y = op.Add(y, op.Mul(u, _per_channel(op.Cast(D, to=ir.DataType.FLOAT), 1)))
    return _output(y, u_in, out_float)


def _routes(x, shape_bdl):
    """(batch, D, Hb, Wb) -> (batch, D, 3 Hb Wb): row-major reversed, column-major, column-major reversed."""
    row_major = op.Reshape(x, shape_bdl)
    col_major = op.Reshape(op.Transpose(x, perm=[0, 1, 3, 2]), shape_bdl)
    return op.Concat(_reverse(row_major), col_major, _reverse(col_major), axis=2)


def _half_res_scan(recurrence, u, delta, A, B, C, D, delta_bias, delta_softplus: bool, sum_routes: bool,
                   out_float: bool):
    dim, groups = A.shape[0], B.shape[1]
    u_in = u
    u, log_decay, drive = _discretize(u, delta, A, B, delta_bias, delta_softplus, groups, dim)
    map_shape = op.Shape(u)
    transposed_shape = op.Concat(op.Shape(u, start=0, end=2), op.Shape(u, start=3), op.Shape(u, start=2, end=3),
                                 axis=0)
    flat = _ints(0, 0, -1)
    h = recurrence(_routes(log_decay, flat), _routes(drive, flat))
    row_rev, col, col_rev = op.Split(h, axis=2, num_outputs=3)
    maps = [op.Reshape(_reverse(row_rev), map_shape),
            op.Transpose(op.Reshape(col, transposed_shape), perm=[0, 1, 3, 2]),
            op.Transpose(op.Reshape(_reverse(col_rev), transposed_shape), perm=[0, 1, 3, 2])]
    if sum_routes:
        y = _apply_c(op.Add(op.Add(maps[0], maps[1]), maps[2]), C, groups, dim)
        if D is not None:
            y = op.Add(y, op.Mul(u, _per_channel(op.Mul(op.Cast(D, to=ir.DataType.FLOAT), _scalar(3.0)), 2)))
        return _output(y, u_in, out_float)
    routes = []
    for h_route in maps:
        y = _apply_c(h_route, C, groups, dim)
        if D is not None:
            y = op.Add(y, op.Mul(u, _per_channel(op.Cast(D, to=ir.DataType.FLOAT), 2)))
        routes.append(op.Unsqueeze(y, _ints(1)))
    return _output(op.Concat(*routes, axis=1), u_in, out_float)


def translation_table(recurrence: Optional[Callable] = None) -> dict:
    """``custom_translation_table`` for :func:`torch.onnx.export`: the compiled scan ops -> ONNX translations.

    Args:
        recurrence: ``(log_decay, drive) -> h`` on (batch, D, L) ONNX values; defaults to
            :func:`linear_recurrence` (``mmmsvmamba.deploy.measure`` passes the alternatives it compares).
    """
    from mmmsvmamba.ops import compiled  # noqa: F401  (registers the ops and their fake kernels)
    recurrence = recurrence or linear_recurrence

    def selective_scan_fwd(u: FLOAT, delta: FLOAT, A: FLOAT, B: FLOAT, C: FLOAT, D: Optional[FLOAT] = None,
                           delta_bias: Optional[FLOAT] = None, delta_softplus: bool = False,
                           out_float: bool = True) -> FLOAT:
        """u, delta (B, D, L); A (D, 1); B, C (B, G, 1, L) -> y (B, D, L)."""
        return _selective_scan(recurrence, u, delta, A, B, C, D, delta_bias, delta_softplus, out_float)

    def ms2d_half_res_scan_fwd(u: FLOAT, delta: FLOAT, A: FLOAT, B: FLOAT, C: FLOAT, D: Optional[FLOAT] = None,
                               delta_bias: Optional[FLOAT] = None, delta_softplus: bool = True,
                               sum_routes: bool = True, out_float: bool = True) -> FLOAT:
        """maps u, delta (B, D, Hb, Wb), B, C (B, G, 1, Hb, Wb) -> (B, D, Hb, Wb) summed over the three routes,
        or (B, 3, D, Hb, Wb) stacked in route order."""
        return _half_res_scan(recurrence, u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes, out_float)

    return {
        torch.ops.mmmsvmamba.selective_scan_fwd.default: selective_scan_fwd,
        torch.ops.mmmsvmamba.ms2d_half_res_scan_fwd.default: ms2d_half_res_scan_fwd,
    }
