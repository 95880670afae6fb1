"""ONNX translations of the compiled scan ops, built from standard ONNX operators (no custom-op library).

``torch.onnx.export(..., dynamo=True)`` sees ``mmmsvmamba::selective_scan_fwd``,
``mmmsvmamba::ms2d_half_res_scan_fwd`` and ``mmmsvmamba::ms2d_block_scan_fwd`` (both scans of an MS2D block, which
an exported block calls) as opaque nodes of the exported program (their fake kernels give the shapes);
:func:`translation_table` tells the exporter how to write each one as ONNX. The math is the op's
(:func:`mmmsvmamba.ops.selective_scan_ref`), per batch b, channel d, group g, position t::

    dt_t = softplus(delta_t + delta_bias_d)     (if delta_softplus; torch returns x above 20, and so do we)
    h_t  = exp(dt_t A_d) h_{t-1} + dt_t B_{g,t} u_t,   h_{-1} = 0
    y_t  = C_{g,t} h_t + D_d u_t                       (float32)

The translation computes sequence-major, (batch, positions, D), and transposes the op's channel-major inputs once
(onnxruntime fuses most of these transposes into the convolutions' output reordering; docs/deploy.md has the
measurements). The recurrence is a chunked scan over a sequence given as **source rows and their order**: the
(batch, R, D) decays and drives of the rows, and the int64 row of each position. The routes of the half-resolution
op and the joined sequences of the block op are such orders, so no copy of a route is ever made:

1. ``a = exp(dt A)`` and ``x = dt B u`` are computed once per source row.
2. The positions are cut into chunks of :data:`CHUNK`; the sequence is padded to whole chunks (padding positions
   read row 0: they come after every real position, so what they compute reaches none). One ``Gather`` per step t
   of a chunk reads a and x of step t of every chunk, (batch, 1, n, D). Inside the chunks the recurrence is
   advanced step by step, unrolled: one Mul and one Add per step, all chunks at once; this gives each chunk's end
   state from a zero start, and the product of its decays (only factors in (0, 1] are multiplied: no overflow).
3. Across chunks, the (decay, end state) summaries are a linear recurrence of their own, over L / CHUNK positions:
   it is scanned the same way (chunks of :data:`CHUNKS_OF_CHUNKS` chunks), and across those by a Hillis-Steele scan
   in an ONNX ``Loop`` of ceil(log2(L / (CHUNK CHUNKS_OF_CHUNKS))) steps, counted at run time (each a shift by
   Pad + Slice, a Mul and an Add): no length limit, and no step wasted on the short sequences of the late stages.
4. The chunks are advanced a second time, from the state entering each: every state is then computed by the
   sequential recurrence itself. The states are joined step-major, (batch, CHUNK n, D); :class:`Scanned` gathers
   those of any positions (one ``Gather``: the full-res sequence, or the three routes at each map position), and
   ``y = C h + D u``.

The half-resolution op scans its three routes (row-major reversed, column-major, column-major reversed; see
:mod:`mmmsvmamba.ops.ms2d_routes`) as ONE sequence over the rows of its map, and gathers the states of the three
routes at each map position back (batch, 3, Hb Wb, D). C and D act per map position, so they are applied after that
(``y = C * sum_routes(h) + 3 D u`` when the routes are summed).

The block op scans its full-res sequence and its three half-res routes as one sequence too, over the rows of both
(and one zero row), with one position between them that reads the zero row: its decay 0 restarts the state from
zero, so the result is exactly the two scans, with one set of chunked-scan nodes per block instead of two.
"""
from typing import Callable, NamedTuple, Optional

import numpy as np
import onnx_ir as ir
import torch
from onnxscript import FLOAT
from onnxscript import opset20 as op

__all__ = ['CHUNK', 'CHUNKS_OF_CHUNKS', 'OPSET', 'Scanned', 'translation_table', 'linear_recurrence',
           'entering_states', 'doubling_loop', 'chunks_of_chunks']

OPSET = 20  # the ai.onnx opset of the exported files (torch 2.14's default); onnxruntime >= 1.17 runs it
CHUNK = 16  # positions scanned sequentially inside a chunk (unrolled into the graph)
# chunks scanned sequentially inside a chunk of chunks (step 3): the summaries are few (L / CHUNK), so the unrolled
# steps cost mostly their number of nodes; 8 against 16: 56 nodes fewer per block, the same speed within the noise
# (docs/deploy.md, "Size arithmetic")
CHUNKS_OF_CHUNKS = 8


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


def _times_group_values(x, values, groups: int, dim: int, stacked: bool = False):
    """x (batch, *positions, D) times B or C (batch, G, 1, *positions), whose group g acts on the channels
    [g D / G, (g + 1) D / G); ``stacked``: x is (batch, 3, *positions, D), the three routes, which share the
    values."""
    rank = len(values.shape) - 1  # of x without the route axis
    values = op.Cast(values, to=ir.DataType.FLOAT)
    route_axis = [_ints(1)] if stacked else []
    if groups == 1:  # (batch, *positions, 1) has the memory order of (batch, 1, 1, *positions): a free Reshape
        return op.Mul(x, op.Reshape(values, op.Concat(op.Shape(values, start=0, end=1), *route_axis,
                                                      op.Shape(values, start=3), _ints(1), axis=0)))
    by_group = op.Reshape(x, op.Concat(op.Shape(x, start=0, end=-1), _ints(groups, dim // groups), axis=0))
    values = op.Transpose(values, perm=[0, *range(3, rank + 1), 1, 2])
    return op.Reshape(op.Mul(by_group, op.Unsqueeze(values, _ints(1)) if stacked else values), op.Shape(x))


def _discretize(u, delta, A, B, delta_bias, delta_softplus: bool, groups: int, dim: int):
    """float32 u, decay ``exp(dt A)`` and drive ``dt B u``, sequence-major (batch, *positions, D), from the op's
    channel-major u, delta (batch, D, *positions) and B (batch, G, 1, *positions)."""
    rank = len(u.shape)
    u = _sequence_major(op.Cast(u, to=ir.DataType.FLOAT), rank)
    dt = _sequence_major(op.Cast(delta, to=ir.DataType.FLOAT), rank)
    if delta_bias is not None:
        dt = op.Add(dt, op.Cast(delta_bias, to=ir.DataType.FLOAT))
    if delta_softplus:
        dt = _softplus(dt)
    decay = op.Exp(op.Mul(dt, op.Reshape(op.Cast(A, to=ir.DataType.FLOAT), _ints(dim))))
    return u, decay, _times_group_values(op.Mul(dt, u), B, groups, dim)


def _finish(h, u, C, D, groups: int, dim: int, d_scale: float = 1.0, stacked: bool = False):
    """y = C h + D u (sequence-major, float32); ``d_scale`` multiplies D (3 when three routes are summed);
    ``stacked``: h holds the three routes, (batch, 3, *positions, D)."""
    y = _times_group_values(h, C, groups, dim, stacked)
    if D is None:
        return y
    D = op.Cast(D, to=ir.DataType.FLOAT)
    d_u = op.Mul(u, D if d_scale == 1.0 else op.Mul(D, _scalar(d_scale)))
    if stacked:  # a Reshape: through an Unsqueeze, onnxruntime's transpose optimiser kept a Transpose of u
        d_u = op.Reshape(d_u, op.Concat(op.Shape(u, start=0, end=1), _ints(1), op.Shape(u, start=1), axis=0))
    return op.Add(y, d_u)


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


def doubling_loop(decay, state, rank: int, axis: int, length):
    """Hillis-Steele along ``axis`` (of ``length`` positions, a 1-element int64): after step k, ``state`` holds the
    recurrence over the 2**(k+1) positions ending at each index. Exactly ceil(log2(length)) steps, counted at run
    time by an ONNX ``Loop``: no length limit, and no step wasted on short axes."""
    length = op.Cast(length, to=ir.DataType.DOUBLE)
    steps = op.Cast(op.Ceil(op.Div(op.Log(length), op.Constant(value=ir.tensor(np.array(np.log(2.0)))))),
                    to=ir.DataType.INT64)
    keep_going = op.Constant(value=ir.tensor(np.array(True)))
    # torch's own recorder call: onnxscript's op.Loop declares a single output, the Loop has one per carried value
    from torch.onnx._internal.exporter._torchlib.ops.hop import call_op
    state, _, _ = call_op('Loop', op.Squeeze(steps), keep_going, state, decay, _ints(1), _num_outputs=3,
                          body=_doubling_step_body(rank, axis))
    return state


def _range(length) -> ir.Value:
    """0, 1, ..., length - 1 (int64) for a 1-element int64 ``length``."""
    return op.Range(op.Constant(value=ir.tensor(np.array(0, np.int64))), op.Squeeze(length),
                    op.Constant(value=ir.tensor(np.array(1, np.int64))))


def _step_major_rows(order, chunk: int):
    """The sequence's source rows ``order`` (L,) -> (chunk, n) with n = ceil(L / chunk): entry (t, c) is the row of
    position c chunk + t, step t of chunk c (padding positions past L read row 0: they come after every real
    position, so what they compute reaches none). Returns it and n (1-element int64)."""
    length = op.Shape(order)
    chunks = op.Div(op.Add(length, _ints(chunk - 1)), _ints(chunk))
    padded_length = op.Mul(chunks, _ints(chunk))
    padded = op.Concat(order, op.ConstantOfShape(op.Sub(padded_length, length),
                                                 value=ir.tensor(np.zeros(1, np.int64))), axis=0)
    flat = _range(padded_length)  # row r of the step-major result holds position (r mod n) chunk + r div n
    positions = op.Add(op.Mul(op.Mod(flat, chunks), _ints(chunk)), op.Div(flat, chunks))
    return op.Reshape(op.Gather(padded, positions), op.Concat(_ints(chunk), chunks, axis=0)), chunks


class Scanned(NamedTuple):
    """The states h of a scanned sequence, (batch, rows, D), stored in the recurrence's own order; ``rows`` maps
    positions of the sequence (an int64 value of any shape) to rows of ``states``."""
    states: ir.Value
    rows: Callable

    def at(self, positions) -> ir.Value:
        """h at ``positions`` (int64, shape S): (batch, *S, D), one Gather."""
        return op.Gather(self.states, self.rows(positions), axis=1)


def _zero_row(like) -> ir.Value:
    """Zeros (batch, 1, D) for ``like`` (batch, R, D)."""
    return op.ConstantOfShape(op.Concat(op.Shape(like, start=0, end=1), _ints(1), op.Shape(like, start=2), axis=0))


def _advance(decays: list, drives: list, state=None) -> list:
    """The recurrence step by step over lists of (batch, 1, n, D) values, from ``state`` (zero if None): the
    states after each step."""
    states = []
    for decay, drive in zip(decays, drives):
        state = drive if state is None else op.Add(op.Mul(decay, state), drive)
        states.append(state)
    return states


def linear_recurrence(decays, drives, order, chunk: int = CHUNK, across: Optional[Callable] = None) -> Scanned:
    """h_p = a_p h_{p-1} + x_p, h_{-1} = 0, over the sequence whose position p is row ``order[p]`` of ``decays`` (a)
    and ``drives`` (x), both (batch, R, D) float32: the chunked scan of the module docstring. ``across`` is step 3,
    ``(chunk decays, chunk end states, n) -> states entering the chunks``, all (batch, 1, n, D), n a 1-element int64:
    :func:`chunks_of_chunks` by default (``deploy.measure`` passes the alternatives)."""
    across = across or chunks_of_chunks
    rows, chunks = _step_major_rows(order, chunk)
    steps = op.Split(rows, axis=0, num_outputs=chunk)  # (1, n) each
    step_decays = [op.Gather(decays, step, axis=1) for step in steps]  # (batch, 1, n, D): step t of every chunk
    step_drives = [op.Gather(drives, step, axis=1) for step in steps]
    chunk_decay = step_decays[0]
    for decay in step_decays[1:]:
        chunk_decay = op.Mul(chunk_decay, decay)
    entering = across(chunk_decay, _advance(step_decays, step_drives)[-1], chunks)
    states = op.Concat(*_advance(step_decays, step_drives, entering), axis=1)  # (batch, chunk, n, D)

    def state_rows(positions):
        return op.Add(op.Mul(op.Mod(positions, _ints(chunk)), chunks), op.Div(positions, _ints(chunk)))
    return Scanned(op.Reshape(states, op.Concat(_ints(0, -1), op.Shape(decays, start=2), axis=0)), state_rows)


def entering_states(chunk_decay, chunk_state, chunks):
    """Step 3 in one level: the state entering each chunk, (batch, 1, n, D), from each chunk's decay and end state
    (from a zero start), by the Hillis-Steele scan over the chunk axis in a Loop, shifted by one."""
    return _shift(doubling_loop(chunk_decay, chunk_state, 4, 2, chunks), 4, 2, _ints(1), length=chunks)


def chunks_of_chunks(chunk_decay, chunk_state, chunks):
    """Step 3 in two levels: the chunk summaries (batch, 1, n, D) are themselves a linear recurrence over n
    positions, scanned by :func:`linear_recurrence` (chunks of chunks, stepped inside) with the Loop of
    :func:`entering_states` across those: the Loop then runs on CHUNKS_OF_CHUNKS times fewer values, and
    log2(CHUNKS_OF_CHUNKS) = 3 steps fewer (each Hillis-Steele step reads and writes all its values several times:
    n log n work against n). The sequence starts with a zero row, so that its state at position c is the one
    entering chunk c."""
    squeeze = _ints(1)

    def after_zero_row(x):  # (batch, 1, n, D) -> (batch, 1 + n, D); a Pad needs no shape read from x
        return op.Pad(op.Squeeze(x, squeeze), _ints(0, 1, 0, 0, 0, 0))
    scanned = linear_recurrence(after_zero_row(chunk_decay), after_zero_row(chunk_state),
                                _range(op.Add(chunks, _ints(1))), CHUNKS_OF_CHUNKS, across=entering_states)
    return op.Unsqueeze(scanned.at(_range(chunks)), squeeze)


def _output(y, u, out_float: bool):
    y = _channel_major(y, len(u.shape))
    return y if out_float else op.CastLike(y, u)


def _selective_scan(recurrence, u, delta, A, B, C, D, delta_bias, delta_softplus: bool, out_float: bool):
    dim, groups = A.shape[0], B.shape[1]
    u_in = u
    u, decay, drive = _discretize(u, delta, A, B, delta_bias, delta_softplus, groups, dim)
    positions = _range(op.Shape(u, start=1, end=2))
    h = recurrence(decay, drive, positions).at(positions)
    return _output(_finish(h, u, C, D, groups, dim), u_in, out_float)


def _route_rows(height, width):
    """The map rows (row-major, of an (Hb, Wb) map) that the three routes visit in scan order, (3 Hb Wb,) int64:
    row-major reversed, column-major, column-major reversed."""
    size = op.Mul(height, width)
    step = _range(size)
    backwards = op.Sub(op.Sub(size, _ints(1)), step)

    def column_major(k):  # the map row at column-major position k = j Hb + i: i Wb + j
        return op.Add(op.Mul(op.Mod(k, height), width), op.Div(k, height))
    return op.Concat(backwards, column_major(step), column_major(backwards), axis=0)


def _route_positions(height, width):
    """(3, Hb Wb) int64: for each route and map row (row-major), the position in the sequence of the three routes
    (the inverse of :func:`_route_rows`)."""
    size = op.Mul(height, width)
    last = op.Sub(size, _ints(1))
    row = _range(size)
    column_major = op.Add(op.Mul(op.Mod(row, width), height), op.Div(row, width))  # position of map row i Wb + j
    routes = [op.Sub(last, row), op.Add(size, column_major), op.Add(op.Add(size, size), op.Sub(last, column_major))]
    return op.Concat(*[op.Unsqueeze(r, _ints(0)) for r in routes], axis=0)


def _merge_routes(routes, u, u_in, C, D, groups: int, dim: int, sum_routes: bool, out_float: bool):
    """The states of the three routes (batch, 3, Hb Wb, D) in map order and u (batch, Hb, Wb, D) -> the half-res
    op's output."""
    shape = op.Concat(op.Shape(C, start=0, end=1), _ints(3), op.Shape(C, start=3), _ints(dim), axis=0)
    routes = op.Reshape(routes, shape)  # (batch, 3, Hb, Wb, D)
    if sum_routes:  # two Adds: onnxruntime's ReduceSum over axis 1 runs on one thread (7x the time at batch 1)
        first, second, third = op.Split(routes, axis=1, num_outputs=3)
        h = op.Squeeze(op.Add(op.Add(first, second), third), _ints(1))
        return _output(_finish(h, u, C, D, groups, dim, d_scale=3.0), u_in, out_float)
    y = op.Transpose(_finish(routes, u, C, D, groups, dim, stacked=True), perm=[0, 1, 4, 2, 3])
    return y if out_float else op.CastLike(y, u_in)


def _map_size(B):
    """Hb and Wb (1-element int64 each) of the maps, read from B (batch, G, 1, Hb, Wb): the sizes are taken from
    values that are small and computed anyway, since onnxruntime materialises a tensor whose only consumer is a
    Shape (the channel-major copy of u it would reorder only for its shape)."""
    return op.Shape(B, start=3, end=4), op.Shape(B, start=4, end=5)


def _map_rows(x, dim: int):
    """(batch, Hb, Wb, D) -> (batch, Hb Wb, D) (a free Reshape; its 0 keeps the batch, read from no value)."""
    return op.Reshape(x, _ints(0, -1, dim))


def _half_res_scan(recurrence, u, delta, A, B, C, D, delta_bias, delta_softplus: bool, sum_routes: bool,
                   out_float: bool):
    dim, groups = A.shape[0], B.shape[1]
    u_in = u
    u, decay, drive = _discretize(u, delta, A, B, delta_bias, delta_softplus, groups, dim)  # (batch, Hb, Wb, D)
    height, width = _map_size(B)
    scanned = recurrence(_map_rows(decay, dim), _map_rows(drive, dim), _route_rows(height, width))
    return _merge_routes(scanned.at(_route_positions(height, width)), u, u_in, C, D, groups, dim, sum_routes,
                         out_float)


def _block_scan(recurrence, full: tuple, half: tuple, sum_routes: bool):
    """Both scans of an MS2D block, ``full`` and ``half`` the (u, delta, A, B, C, D, delta_bias) of the two ops,
    as ONE sequence: the full-res sequence, a restart position, the three half-res routes (module docstring)."""
    dim, groups = full[2].shape[0], full[3].shape[1]

    def discretize(u, delta, A, B, C, D, delta_bias):
        return _discretize(u, delta, A, B, delta_bias, True, groups, dim)
    full_u, full_decay, full_drive = discretize(*full)
    half_u, half_decay, half_drive = discretize(*half)
    zero = _zero_row(full_u)
    # the source rows: the full-res sequence, the half-res map (row-major), one zero row (the restart: decay 0)
    decays = op.Concat(full_decay, _map_rows(half_decay, dim), zero, axis=1)
    drives = op.Concat(full_drive, _map_rows(half_drive, dim), zero, axis=1)
    length = op.Shape(full[3], start=3)
    height, width = _map_size(half[3])
    restart = op.Add(length, op.Mul(height, width))
    full_positions = _range(length)
    scanned = recurrence(decays, drives, op.Concat(full_positions, restart,
                                                   op.Add(_route_rows(height, width), length), axis=0))
    full_y = _finish(scanned.at(full_positions), full_u, full[4], full[5], groups, dim)
    routes = scanned.at(op.Add(_route_positions(height, width), op.Add(length, _ints(1))))
    return (_output(full_y, full[0], True),
            _merge_routes(routes, half_u, half[0], half[4], half[5], groups, dim, sum_routes, True))


def translation_table(recurrence: Optional[Callable] = None) -> dict:
    """``custom_translation_table`` for :func:`torch.onnx.export`: the compiled scan ops -> ONNX translations.

    Args:
        recurrence: ``(decays, drives, order) -> Scanned``, the sequence as source rows (batch, R, D) and the
            int64 rows of its positions (as :func:`linear_recurrence`, the default; ``mmmsvmamba.deploy.measure``
            passes the alternatives it compares).
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

    def ms2d_block_scan_fwd(u: FLOAT, delta: FLOAT, A: FLOAT, B: FLOAT, C: FLOAT, D: FLOAT,
                            delta_bias: Optional[FLOAT], half_u: FLOAT, half_delta: FLOAT, half_A: FLOAT,
                            half_B: FLOAT, half_C: FLOAT, half_D: FLOAT, half_delta_bias: Optional[FLOAT],
                            sum_routes: bool):
        """The two scans of an MS2D block (:func:`mmmsvmamba.ops.ms2d_block_scan`) as one recurrence."""
        return _block_scan(recurrence, (u, delta, A, B, C, D, delta_bias),
                           (half_u, half_delta, half_A, half_B, half_C, half_D, half_delta_bias), sum_routes)

    return {
        torch.ops.mmmsvmamba.selective_scan_fwd.default: selective_scan_fwd,
        torch.ops.mmmsvmamba.ms2d_half_res_scan_fwd.default: ms2d_half_res_scan_fwd,
        torch.ops.mmmsvmamba.ms2d_block_scan_fwd.default: ms2d_block_scan_fwd,
    }
