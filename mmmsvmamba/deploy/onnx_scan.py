"""ONNX translations of the compiled scan ops, built from standard ONNX operators (no custom-op library).

``torch.onnx.export(..., dynamo=True)`` sees ``mmmsvmamba::selective_scan_fwd``,
``mmmsvmamba::ms2d_half_res_scan_fwd`` and ``mmmsvmamba::ms2d_block_scan_fwd`` (both scans of an MS2D block, which
an exported block calls) as opaque nodes of the exported program (their fake kernels give the shapes);
:func:`translation_table` tells the exporter how to write each one as ONNX. The math is the op's
(:func:`mmmsvmamba.ops.selective_scan_ref`), per batch b, channel d, group g, position t::

    dt_t = softplus(delta_t + delta_bias_d)     (if delta_softplus; torch returns x above 20, and so do we)
    h_t  = exp(dt_t A_d) h_{t-1} + dt_t B_{g,t} u_t,   h_{-1} = 0
    y_t  = C_{g,t} h_t + D_d u_t                       (float32)

The translation computes sequence-major, (batch, positions, D), and transposes the op's channel-major inputs once:
onnxruntime's Split, Concat, Slice and Pad along a position axis then move blocks of D contiguous values instead of
single elements, and the column-major routes of the half-resolution op become a swap of two outer axes (the same
Transpose on (batch, D, Hb, Wb) maps, swapping the two innermost axes, runs 20-80 times slower per element in
onnxruntime). docs/deploy.md has the measurements. The recurrence is a chunked scan:

1. ``log a = dt A`` (no log is taken) and ``x = dt B u`` are computed for the whole sequence, which may come in
   parts (the routes below); one Concat joins the parts and pads them to a multiple of :data:`CHUNK` positions
   (``log a = 0``, ``x = 0``: padding at the end changes nothing before it), viewed as (batch, chunks, CHUNK, D).
2. Inside each chunk, h is advanced sequentially from a zero state, unrolled: CHUNK steps of one Mul and one Add on
   (batch, chunks, 1, D) slices, all chunks at once. The decay accumulated since the chunk start is
   ``exp(cumsum(log a))``, which only multiplies factors in (0, 1] (no ``exp(-cumsum)``: it overflows as soon as
   the log-decay of a chunk passes -88, and trained channels reach -50 per step).
3. Across chunks, the (log decay, end state) summaries are a linear recurrence of their own, over L / CHUNK
   positions: it is scanned the same way (chunks of chunks, unrolled inside), and across those by a Hillis-Steele
   scan in an ONNX ``Loop`` of ceil(log2(L / CHUNK**2)) steps, counted at run time (each a shift by Pad + Slice, a
   Mul and an Add): no length limit, and no step wasted on the short sequences of the late stages.
4. ``h = h_local + decay_since_chunk_start * state_entering_chunk``, cut back into the parts by one Split, then
   ``y = C h + D u``.

The half-resolution op builds its three routes (row-major reversed, column-major, column-major reversed; see
:mod:`mmmsvmamba.ops.ms2d_routes`) with Reshape, Transpose and reversing Slices, scans them as ONE sequence, and
merges them back. Only ``log a`` and ``x`` are routed: C and D act per map position, so they are applied after the
merge (``y = C * sum_routes(h) + 3 D u`` when the routes are summed).

The block op scans its full-res sequence and its three half-res routes as one sequence too, with one position
between them at which the state restarts from zero (``log a`` = :data:`RESTART_LOG_DECAY`, whose exp is 0, and
``x = 0``): exactly the two scans, with one set of chunked-scan nodes per block instead of two (about 110 nodes
fewer) and the padding and cutting copies of one sequence instead of two.
"""
from typing import Callable, Optional

import numpy as np
import onnx_ir as ir
import torch
from onnxscript import FLOAT
from onnxscript import opset20 as op

__all__ = ['CHUNK', 'OPSET', 'translation_table', 'linear_recurrence', 'entering_states', 'doubling_loop', 'to_chunks',
           'unrolled_chunks', 'chunks_of_chunks']

OPSET = 20  # the ai.onnx opset of the exported files (torch 2.14's default); onnxruntime >= 1.17 runs it
CHUNK = 16  # positions scanned sequentially inside a chunk (unrolled into the graph)
# exp() of it is 0 in float32, so the state after a position with this log decay (and drive 0) is 0 (_restart)
RESTART_LOG_DECAY = -1e4
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


def _softplus(x):
    """softplus(x) = log(1 + exp(x)), and x above torch's threshold of 20, in five vectorised elementwise passes.

    onnxruntime's ``Softplus`` kernel is scalar (it took a third of a scan's time) and has no threshold. The exp
    is taken of x clipped at 20, so it cannot overflow; above 20, log(1 + exp(20)) rounds to 20 and the Max returns
    x. Below 20 the Max changes nothing beyond rounding (log(1 + exp(x)) > x). Rounding 1 + exp(x) costs at most
    6e-8 absolute (the result is 0 instead of exp(x) for x < -16): dt enters the scan as dt A and dt B u, where
    absolute error is what counts. Over x in [-100, 100] the result stays within 6.3e-7 of torch's softplus in
    float64 (an ulp of the result near x = 12). ``Clip``, not ``Min``: onnxruntime runs Min against a scalar on one
    thread (2 threads, 3.2 M values: 1.02 against 0.77 ms). The Log is the expensive pass (about 6 Exps: it is not
    vectorised in onnxruntime), and no standard operator computes log(1 + exp(x)) faster.
    """
    return op.Max(op.Log(op.Add(op.Exp(op.Clip(x, None, _scalar(20.0))), _scalar(1.0))), x)


def _sequence_major(x, rank: int):
    """(batch, D, *positions) -> (batch, *positions, D): the layout the translation computes in (module docstring)."""
    return op.Transpose(x, perm=[0, *range(2, rank), 1])


def _channel_major(x, rank: int):
    """(batch, *positions, D) -> (batch, D, *positions), the layout of the op's inputs and outputs."""
    return op.Transpose(x, perm=[0, rank - 1, *range(1, rank - 1)])


def _times_group_values(x, values, groups: int, dim: int):
    """x (batch, *positions, D) times B or C (batch, G, 1, *positions), whose group g acts on the channels
    [g D / G, (g + 1) D / G)."""
    rank = len(values.shape) - 1  # of x
    values = op.Cast(values, to=ir.DataType.FLOAT)
    if groups == 1:  # (batch, *positions, 1) has the memory order of (batch, 1, 1, *positions): a free Reshape
        return op.Mul(x, op.Reshape(values, op.Concat(op.Shape(values, start=0, end=1), op.Shape(values, start=3),
                                                      _ints(1), axis=0)))
    by_group = op.Reshape(x, op.Concat(op.Shape(x, start=0, end=-1), _ints(groups, dim // groups), axis=0))
    return op.Reshape(op.Mul(by_group, op.Transpose(values, perm=[0, *range(3, rank + 1), 1, 2])), op.Shape(x))


def _discretize(u, delta, A, B, delta_bias, delta_softplus: bool, groups: int, dim: int):
    """float32 u, log decay ``dt A`` and drive ``dt B u``, sequence-major (batch, *positions, D), from the op's
    channel-major u, delta (batch, D, *positions) and B (batch, G, 1, *positions)."""
    rank = len(u.shape)
    u = _sequence_major(op.Cast(u, to=ir.DataType.FLOAT), rank)
    dt = _sequence_major(op.Cast(delta, to=ir.DataType.FLOAT), rank)
    if delta_bias is not None:
        dt = op.Add(dt, op.Cast(delta_bias, to=ir.DataType.FLOAT))
    if delta_softplus:
        dt = _softplus(dt)
    log_decay = op.Mul(dt, op.Reshape(op.Cast(A, to=ir.DataType.FLOAT), _ints(dim)))
    return u, log_decay, _times_group_values(op.Mul(dt, u), B, groups, dim)


def _finish(h, u, C, D, groups: int, dim: int, d_scale: float = 1.0):
    """y = C h + D u (sequence-major, float32); ``d_scale`` multiplies D (3 when three routes are summed)."""
    y = _times_group_values(h, C, groups, dim)
    if D is None:
        return y
    D = op.Cast(D, to=ir.DataType.FLOAT)
    return op.Add(y, op.Mul(u, D if d_scale == 1.0 else op.Mul(D, _scalar(d_scale))))


def _constant(name: str, array: np.ndarray) -> ir.Node:
    node = ir.Node('', 'Constant', [], attributes=[ir.AttrTensor('value', ir.tensor(array))])
    node.outputs[0].name = name
    return node


def _doubling_step_body(rank: int, axis: int) -> ir.Graph:
    """The body of the ONNX ``Loop`` of :func:`doubling_loop`: one Hillis-Steele step with the shift ``offset``
    (a 1-element int64, doubled for the next step): ``state += decay * shifted(state)``,
    ``decay *= shifted(decay)``, where ``shifted`` moves values ``min(offset, length)`` positions towards higher
    indices, zeros entering first."""
    def value(name, dtype, shape=None):
        return ir.Value(name=name, type=ir.TensorType(dtype), shape=None if shape is None else ir.Shape(shape))
    step, keep_going = value('step', ir.DataType.INT64, []), value('keep_going', ir.DataType.BOOL, [])
    state, decay = value('state', ir.DataType.FLOAT), value('decay', ir.DataType.FLOAT)
    offset = value('offset', ir.DataType.INT64, [1])
    nodes = [_constant('zeros_before', np.zeros(axis, np.int64)),
             _constant('zeros_after', np.zeros(2 * rank - axis - 1, np.int64)),
             _constant('start', np.zeros(1, np.int64)), _constant('axes', np.array([axis], np.int64)),
             _constant('two', np.array([2], np.int64))]
    consts = {n.outputs[0].name: n.outputs[0] for n in nodes}

    def add(op_type, *inputs, **attributes):
        node = ir.Node('', op_type, inputs, attributes=[ir.AttrInt64(k, v) for k, v in attributes.items()])
        nodes.append(node)
        return node.outputs[0]
    length = add('Shape', state, start=axis, end=axis + 1)
    pads = add('Concat', consts['zeros_before'], add('Min', offset, length), consts['zeros_after'], axis=0)

    def shifted(x):
        return add('Slice', add('Pad', x, pads), consts['start'], length, consts['axes'])
    outputs = [add('Identity', keep_going), add('Add', state, add('Mul', decay, shifted(state))),
               add('Mul', decay, shifted(decay)), add('Mul', offset, consts['two'])]
    for output, name in zip(outputs, ('keep_going_out', 'state_out', 'decay_out', 'offset_out')):
        output.name = name  # the exporter names only the main graph's values
    for number, node in enumerate(nodes):
        for output in node.outputs:
            output.name = output.name or f'doubling_{number}'
    return ir.Graph([step, keep_going, state, decay, offset], outputs, nodes=nodes,
                    opset_imports={'': OPSET}, name='doubling_step')


def doubling_loop(decay, state, rank: int, axis: int):
    """Hillis-Steele along ``axis``: after step k, ``state`` holds the recurrence over the 2**(k+1) positions ending
    at each index. Exactly ceil(log2(length)) steps, counted at run time by an ONNX ``Loop``: no length limit, and no
    step wasted on short axes."""
    length = op.Cast(op.Shape(state, start=axis, end=axis + 1), to=ir.DataType.DOUBLE)
    steps = op.Cast(op.Ceil(op.Div(op.Log(length), op.Constant(value=ir.tensor(np.array(np.log(2.0)))))),
                    to=ir.DataType.INT64)
    keep_going = op.Constant(value=ir.tensor(np.array(True)))
    # torch's own recorder call: onnxscript's op.Loop declares a single output, the Loop has one per carried value
    from torch.onnx._internal.exporter._torchlib.ops.hop import call_op
    state, _, _ = call_op('Loop', op.Squeeze(steps), keep_going, state, decay, _ints(1), _num_outputs=3,
                          body=_doubling_step_body(rank, axis))
    return state


def to_chunks(log_decays: list, drives: list, chunk: int):
    """Parts (batch, L_i, D) of one sequence -> the sequence (batch, ceil(L / chunk), chunk, D), L = sum L_i, padded
    with log decay 0 and drive 0 (changing nothing before the padding), and the part lengths with the padding's
    last (the sizes that cut the result back into the parts). The parts and the padding are joined by one Concat,
    which is also the padding's only copy (a Pad copies on one onnxruntime thread, a Concat on all)."""
    lengths = [op.Shape(part, start=1, end=2) for part in drives]
    length = lengths[0]
    for part_length in lengths[1:]:
        length = op.Add(length, part_length)
    padding = op.Mod(op.Sub(_ints(chunk), op.Mod(length, _ints(chunk))), _ints(chunk))
    first = drives[0]
    zeros = op.ConstantOfShape(op.Concat(op.Shape(first, start=0, end=1), padding, op.Shape(first, start=2), axis=0))
    chunks = op.Concat(_ints(0, -1, chunk), op.Shape(first, start=2), axis=0)

    def joined(parts):
        return op.Reshape(op.Concat(*parts, zeros, axis=1), chunks)
    return joined(log_decays), joined(drives), op.Concat(*lengths, padding, axis=0)


def _cut(h, sizes, parts: int) -> list:
    """(batch, L + padding, D) -> its ``parts`` parts of the given ``sizes``, without the padding (one Split)."""
    from torch.onnx._internal.exporter._torchlib.ops.hop import call_op  # op.Split cannot count runtime sizes
    return list(call_op('Split', h, sizes, axis=1, _num_outputs=parts + 1))[:parts]


def unrolled_chunks(decay, drive, chunk: int):
    """Step 2: the recurrence inside each chunk of (batch, n, chunk, D) values from a zero state, sequential and
    unrolled over the chunk's positions (one Mul and one Add on (batch, n, 1, D) slices each), all chunks at once.
    Returns the states (batch, n, chunk, D) and those at the chunk ends (batch, n, 1, D)."""
    decays = op.Split(decay, axis=2, num_outputs=chunk)
    drives = op.Split(drive, axis=2, num_outputs=chunk)
    state = drives[0]
    local = [state]
    for t in range(1, chunk):
        state = op.Add(op.Mul(decays[t], state), drives[t])
        local.append(state)
    return op.Concat(*local, axis=2), state


def entering_states(chunk_log_decay, chunk_state):
    """Step 3 in one level: the state entering each chunk, (batch, n, 1, D), from each chunk's log decay and end
    state (local, from a zero start), by the Hillis-Steele scan over the chunk axis in a Loop, shifted by one."""
    return _shift(doubling_loop(op.Exp(chunk_log_decay), chunk_state, 4, 1), 4, 1, _ints(1))


def chunks_of_chunks(chunk_log_decay, chunk_state):
    """Step 3 in two levels: the chunk summaries (batch, n, 1, D) are themselves a linear recurrence over n
    positions, scanned by :func:`linear_recurrence` (chunks of chunks, unrolled inside) with the Loop of
    :func:`entering_states` across those: the Loop then runs on CHUNK times fewer values, and log2(CHUNK) = 4
    steps fewer (each Hillis-Steele step reads and writes all its values several times: n log n work against n)."""
    squeeze = _ints(2)
    states, = linear_recurrence([op.Squeeze(chunk_log_decay, squeeze)], [op.Squeeze(chunk_state, squeeze)],
                                across=entering_states)
    return _shift(op.Unsqueeze(states, squeeze), 4, 1, _ints(1))


def linear_recurrence(log_decays: list, drives: list, chunk: int = CHUNK, across: Optional[Callable] = None) -> list:
    """h_t = exp(log_decay_t) h_{t-1} + drive_t along axis 1, h_{-1} = 0, over one sequence given as its parts
    (lists of (batch, L_i, D) float32 values, joined in order): the chunked scan of the module docstring. Returns
    h cut into the same parts. ``across`` is step 3, ``(chunk log decay, chunk end state) -> state entering the
    chunk``, all (batch, n, 1, D): :func:`chunks_of_chunks` by default (``deploy.measure`` passes the
    alternatives)."""
    across = across or chunks_of_chunks
    log_decay, drive, sizes = to_chunks(log_decays, drives, chunk)  # (batch, n, chunk, D)
    log_since_start = op.CumSum(log_decay, _ints(2))  # log decay from the chunk start through position t
    local, state = unrolled_chunks(op.Exp(log_decay), drive, chunk)
    entering = across(op.Slice(log_since_start, _ints(chunk - 1), _ints(chunk), _ints(2)), state)

    # 4. every position: its local state plus the entering state decayed to it
    h = op.Add(local, op.Mul(op.Exp(log_since_start), entering))
    return _cut(op.Reshape(h, op.Concat(_ints(0, -1), op.Shape(drive, start=3), axis=0)), sizes, len(drives))


def _output(y, u, out_float: bool):
    y = _channel_major(y, len(u.shape))
    return y if out_float else op.CastLike(y, u)


def _selective_scan(recurrence, u, delta, A, B, C, D, delta_bias, delta_softplus: bool, out_float: bool):
    dim, groups = A.shape[0], B.shape[1]
    u_in = u
    u, log_decay, drive = _discretize(u, delta, A, B, delta_bias, delta_softplus, groups, dim)
    h, = recurrence([log_decay], [drive])
    return _output(_finish(h, u, C, D, groups, dim), u_in, out_float)


def _routes(x, dim: int) -> list:
    """(batch, Hb, Wb, D) -> the three routes (batch, Hb Wb, D): row-major reversed, column-major, column-major
    reversed (scanned as one sequence in this order)."""
    flat = _ints(0, -1, dim)
    row_major = op.Reshape(x, flat)
    col_major = op.Reshape(op.Transpose(x, perm=[0, 2, 1, 3]), flat)
    return [_reverse(row_major, 1), col_major, _reverse(col_major, 1)]


def _merge_routes(routes: list, u, u_in, C, D, groups: int, dim: int, sum_routes: bool, out_float: bool):
    """The three scanned routes (batch, Hb Wb, D) and u (batch, Hb, Wb, D) -> the half-res op's output."""
    row_rev, col, col_rev = routes
    row = op.Reshape(_reverse(row_rev, 1), op.Shape(u))
    transposed_shape = op.Concat(op.Shape(u, start=0, end=1), op.Shape(u, start=2, end=3),
                                 op.Shape(u, start=1, end=2), _ints(dim), axis=0)

    def by_rows(col_route):  # a column-major route back to (batch, Hb, Wb, D)
        return op.Transpose(op.Reshape(col_route, transposed_shape), perm=[0, 2, 1, 3])
    if sum_routes:
        h = op.Add(row, by_rows(op.Add(col, _reverse(col_rev, 1))))
        return _output(_finish(h, u, C, D, groups, dim, d_scale=3.0), u_in, out_float)
    routes = [_channel_major(_finish(h_route, u, C, D, groups, dim), 4)
              for h_route in (row, by_rows(col), by_rows(_reverse(col_rev, 1)))]
    y = op.Concat(*[op.Unsqueeze(y, _ints(1)) for y in routes], axis=1)
    return y if out_float else op.CastLike(y, u_in)


def _half_res_scan(recurrence, u, delta, A, B, C, D, delta_bias, delta_softplus: bool, sum_routes: bool,
                   out_float: bool):
    dim, groups = A.shape[0], B.shape[1]
    u_in = u
    u, log_decay, drive = _discretize(u, delta, A, B, delta_bias, delta_softplus, groups, dim)  # (batch, Hb, Wb, D)
    routes = recurrence(_routes(log_decay, dim), _routes(drive, dim))
    return _merge_routes(routes, u, u_in, C, D, groups, dim, sum_routes, out_float)


def _restart(like):
    """A position at which the recurrence restarts from h = 0: log decay :data:`RESTART_LOG_DECAY` and drive 0,
    (batch, 1, D) like ``like`` (batch, L, D)."""
    shape = op.Concat(op.Shape(like, start=0, end=1), _ints(1), op.Shape(like, start=2), axis=0)
    return (op.ConstantOfShape(shape, value=ir.tensor(np.array([RESTART_LOG_DECAY], np.float32))),
            op.ConstantOfShape(shape))


def _block_scan(recurrence, full: tuple, half: tuple, sum_routes: bool):
    """Both scans of an MS2D block, ``full`` and ``half`` the (u, delta, A, B, C, D, delta_bias) of the two ops,
    as ONE sequence: the full-res sequence, a restart position, the three half-res routes (module docstring)."""
    dim, groups = full[2].shape[0], full[3].shape[1]

    def discretize(u, delta, A, B, C, D, delta_bias):
        return _discretize(u, delta, A, B, delta_bias, True, groups, dim)
    full_u, full_log_decay, full_drive = discretize(*full)
    half_u, half_log_decay, half_drive = discretize(*half)
    restart_log_decay, restart_drive = _restart(full_drive)
    full_h, _, *routes = recurrence([full_log_decay, restart_log_decay, *_routes(half_log_decay, dim)],
                                    [full_drive, restart_drive, *_routes(half_drive, dim)])
    full_y = _output(_finish(full_h, full_u, full[4], full[5], groups, dim), full[0], True)
    return full_y, _merge_routes(routes, half_u, half[0], half[4], half[5], groups, dim, sum_routes, True)


def translation_table(recurrence: Optional[Callable] = None) -> dict:
    """``custom_translation_table`` for :func:`torch.onnx.export`: the compiled scan ops -> ONNX translations.

    Args:
        recurrence: ``(log_decays, drives) -> hs``, the parts of one sequence as lists of (batch, L_i, D) ONNX
            values (as :func:`linear_recurrence`); defaults to
            :func:`linear_recurrence` (``mmmsvmamba.deploy.measure`` passes the alternatives it compares).
    """
    from mmmsvmamba.ops import block_scan, compiled  # noqa: F401  (register the ops and their fake kernels)
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

    def ms2d_block_scan_fwd(u: FLOAT, delta: FLOAT, A: FLOAT, B: FLOAT, C: FLOAT, D: FLOAT, delta_bias: FLOAT,
                            half_u: FLOAT, half_delta: FLOAT, half_A: FLOAT, half_B: FLOAT, half_C: FLOAT,
                            half_D: FLOAT, half_delta_bias: FLOAT, sum_routes: bool):
        """The two scans of an MS2D block (:func:`mmmsvmamba.ops.ms2d_block_scan`) as one recurrence."""
        return _block_scan(recurrence, (u, delta, A, B, C, D, delta_bias),
                           (half_u, half_delta, half_A, half_B, half_C, half_D, half_delta_bias), sum_routes)

    return {
        torch.ops.mmmsvmamba.selective_scan_fwd.default: selective_scan_fwd,
        torch.ops.mmmsvmamba.ms2d_half_res_scan_fwd.default: ms2d_half_res_scan_fwd,
        torch.ops.mmmsvmamba.ms2d_block_scan_fwd.default: ms2d_block_scan_fwd,
    }
