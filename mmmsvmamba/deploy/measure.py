"""The measurement behind docs/deploy.md's choice of scan formulation in ONNX Runtime.

    python -m mmmsvmamba.deploy.measure formulations [--threads 2] [--repeats 7] [--batch 8]
    python -m mmmsvmamba.deploy.measure paired nano tiny [--batch 1 8] [--threads 2] [--pairs 15]

``formulations`` exports one selective scan (the shapes of MSVMamba-T's stages at 224x224) with each
candidate ONNX formulation of the recurrence and times it in onnxruntime next to the compiled op.

``paired`` compares whole classifiers in onnxruntime and PyTorch in one process, alternating one inference of each:
both runtimes then see the same machine, and the median of the per-pair ratios holds where the ratio of two
separate processes (``tools/benchmark.py classify --runtimes pytorch onnxruntime``, which also measures peak memory)
moved by up to 30 % between repetitions on a shared virtual machine (docs/deploy.md, "Speed"). onnxruntime's
threads do not spin here, so that they leave the cores to the PyTorch run that follows; that costs onnxruntime a
little, never PyTorch.
"""
import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx_ir as ir
import torch
from onnxscript import opset20 as op

from ..timing import time_runs
from . import onnx_scan
from .onnx_scan import _ints, _shift, doubling_loop

# ----------------------------------------------------------------------------------------------------------------
# Candidate formulations of h_t = decay_t h_{t-1} + drive_t over a sequence given as source rows and their order;
# each takes (decays, drives, order) and returns an onnx_scan.Scanned, as onnx_scan.linear_recurrence does


def chunked(chunk: int):
    """The shipped formulation (:func:`onnx_scan.linear_recurrence`) with another chunk length."""
    return functools.partial(onnx_scan.linear_recurrence, chunk=chunk)


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


def fixed_doublings(decays, drives, order, doublings: int = 14):
    """Chunks as shipped, but a fixed number of Hillis-Steele steps across them, unrolled in the graph (exact up
    to ``CHUNK * 2**doublings`` positions; the shipped formulation before the ``Loop``)."""
    def across(chunk_decay, chunk_state, chunks):
        return _shift(doubling_scan(chunk_decay, chunk_state, 4, 2, doublings), 4, 2, _ints(1))
    return onnx_scan.linear_recurrence(decays, drives, order, across=across)


def _in_order(recurrence):
    """A formulation written for one (batch, L, D) sequence in position order: the sequence is gathered first."""
    def scanned(decays, drives, order):
        h = recurrence(op.Gather(decays, order, axis=1), op.Gather(drives, order, axis=1))
        return onnx_scan.Scanned(h, lambda positions: positions)
    return scanned


def doubling(decay, drive):
    """Hillis-Steele over the whole sequence: ceil(log2(L)) steps in a Loop, each a shift (Pad + Slice), Mul and
    Add on (batch, L, D) tensors."""
    return doubling_loop(decay, drive, 3, 1, op.Shape(drive, start=1, end=2))


def _scan_body():
    """The body of an ONNX ``Scan`` that advances h = a h + x and emits the state it was given."""
    def value(name):
        return ir.Value(name=name, type=ir.TensorType(ir.DataType.FLOAT))
    state, a, x = value('state'), value('a'), value('x')
    mul = ir.Node('', 'Mul', [a, state])
    add = ir.Node('', 'Add', [mul.outputs[0], x])
    copy = ir.Node('', 'Identity', [state])
    for node, name in ((mul, 'scan_decayed'), (add, 'scan_state'), (copy, 'scan_entering')):
        node.outputs[0].name = name  # the exporter names only the main graph's values
    return ir.Graph([state, a, x], [add.outputs[0], copy.outputs[0]], nodes=[mul, add, copy],
                    opset_imports={'': onnx_scan.OPSET}, name='scan_body')


def _scan(decay, drive, axis: int):
    """(entering states) of h = decay h + drive along ``axis`` of (batch, D, ...) values, by an ONNX Scan."""
    from torch.onnx._internal.exporter._torchlib.ops.hop import call_op
    rank_rest = op.Shape(drive, start=axis + 1)
    start = op.ConstantOfShape(op.Concat(op.Shape(drive, start=0, end=axis), rank_rest, axis=0),
                               value=ir.tensor(np.zeros(1, np.float32)))
    _, entering = call_op('Scan', start, decay, drive, _num_outputs=2, body=_scan_body(), num_scan_inputs=2,
                          scan_input_axes=[axis, axis], scan_output_axes=[axis])
    return entering


def scan_op(decay, drive):
    """ONNX ``Scan`` over the positions: a body of one Mul and one Add on (batch, D) slices per step."""
    return op.Add(op.Mul(decay, _scan(decay, drive, 1)), drive)  # h_t = a_t h_{t-1} + x_t


def chunked_scan(decays, drives, order):
    """Chunks as shipped, stepped inside, and an ONNX ``Scan`` over the chunks instead of the doubling steps."""
    return onnx_scan.linear_recurrence(decays, drives, order,
                                       across=lambda chunk_decay, state, chunks: _scan(chunk_decay, state, 2))


FORMULATIONS = {
    'chunked-16, chunks of chunks, Loop across those (shipped)': onnx_scan.linear_recurrence,
    'chunked-16, Loop across chunks': functools.partial(onnx_scan.linear_recurrence,
                                                        across=onnx_scan.entering_states),
    'chunked-8': chunked(8),
    'chunked-32': chunked(32),
    'chunked-16, 14 fixed doublings across chunks': fixed_doublings,
    'chunked-16, onnx Scan across chunks': chunked_scan,
    'doubling over the whole sequence': _in_order(doubling),
    'onnx Scan over positions': _in_order(scan_op),
}


class _OneScan(torch.nn.Module):
    """One full-resolution selective scan with MSVMamba's arguments (softplus, D, delta_bias), for timing."""

    def __init__(self, dim: int):
        super().__init__()
        self.A = torch.nn.Parameter(-torch.exp(torch.randn(dim, 1) * 0.5))
        self.D = torch.nn.Parameter(torch.randn(dim))
        self.delta_bias = torch.nn.Parameter(torch.randn(dim) * 0.1 - 3)

    def forward(self, u, delta, B, C):
        return torch.ops.mmmsvmamba.selective_scan_fwd(u, delta, self.A, B, C, self.D, self.delta_bias, True, True)


def _scan_inputs(batch, dim, length):
    """u, delta (batch, dim, length) in channels-last memory, as MSVMamba's layers make them (the compiled op
    would copy other layouts first), and B, C (batch, 1, 1, length)."""
    def channels_last():
        return torch.randn(batch, length, dim).transpose(1, 2)
    return channels_last(), channels_last(), torch.randn(batch, 1, 1, length), torch.randn(batch, 1, 1, length)


def export_one_scan(path: str, module: _OneScan, recurrence) -> None:
    batch, length = torch.export.Dim.DYNAMIC, torch.export.Dim.DYNAMIC
    dims = ({0: batch, 2: length}, {0: batch, 2: length}, {0: batch, 3: length}, {0: batch, 3: length})
    program = torch.onnx.export(module, _scan_inputs(2, module.D.shape[0], 100), dynamic_shapes=dims, dynamo=True,
                                opset_version=onnx_scan.OPSET, optimize=False, verbose=False,
                                custom_translation_table=onnx_scan.translation_table(recurrence))
    program.save(path)


def compare_formulations(threads: int = 1, repeats: int = 15, batch: int = 1) -> list:
    """Milliseconds of process CPU time per scan (median of ``repeats``, alternating runtimes) for each
    formulation in onnxruntime and for the compiled op in PyTorch, and the error against the float64 reference.

    CPU time at one thread measures the work, whatever else the machine runs.
    """
    from .onnxruntime import build_session
    from mmmsvmamba.ops.selective_scan import selective_scan_ref
    torch.set_num_threads(threads)
    shapes = [(batch, 96, 3136), (batch, 192, 784), (batch, 384, 196), (batch, 96, 3 * 28 * 28)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, recurrence in FORMULATIONS.items():
            row = dict(formulation=name)
            for batch, dim, length in shapes:
                path = os.path.join(tmp, 'scan.onnx')
                torch.manual_seed(0)
                module = _OneScan(dim)
                start = time.perf_counter()
                export_one_scan(path, module, recurrence)
                export_s = time.perf_counter() - start
                session = build_session(path, threads, spinning=False)
                inputs = _scan_inputs(batch, dim, length)
                feed = {i.name: np.ascontiguousarray(t.numpy()) for i, t in zip(session.get_inputs(), inputs)}
                out = session.run(None, feed)[0]
                with torch.no_grad():
                    ref = selective_scan_ref(*[t.double() for t in inputs[:2]], module.A.double(),
                                             *[t.double() for t in inputs[2:]], module.D.double(),
                                             module.delta_bias.double(), True)
                    err = float(np.abs(out - ref.numpy()).max() / np.abs(ref.numpy()).max())
                    ort_ms, torch_ms = [], []
                    for _ in range(repeats):  # interleaved
                        ort_ms.append(time_runs(lambda: session.run(None, feed), 1)[1][0] * 1e3)
                        torch_ms.append(time_runs(lambda: module(*inputs), 1)[1][0] * 1e3)
                nodes = len(__import__('onnx').load(path).graph.node)
                row[f'{batch}x{dim}x{length}'] = dict(ort_ms=round(statistics.median(ort_ms), 3),
                                                     torch_ms=round(statistics.median(torch_ms), 3),
                                                     max_rel_err=err, nodes=nodes, export_s=round(export_s, 1))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def compare_paired(archs, batches=(1, 8), threads: int = 2, pairs: int = 15, res: int = 224) -> list:
    """Per arch and batch: PyTorch and onnxruntime milliseconds per inference (medians of ``pairs`` alternating
    runs, after 2 warm-up runs each) and the median over the pairs of PyTorch's time / onnxruntime's (> 1: faster
    in onnxruntime). Random weights, seeded; one export per arch, dynamic batch."""
    from .export import build_model, export_onnx
    from .onnxruntime import ort_infer_step
    torch.set_num_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, arch in enumerate(archs):
            torch.manual_seed(0)
            model = build_model(arch=arch)
            path = os.path.join(tmp, f'{index}.onnx')
            export_onnx(model, path)
            for batch in batches:
                images = torch.randn(batch, 3, res, res)
                ort_step = ort_infer_step(path, images, threads, spinning=False)

                def torch_step():
                    with torch.no_grad():
                        return model(images)
                for _ in range(2):
                    ort_step(), torch_step()
                ort_s, torch_s = [], []
                for _ in range(pairs):
                    ort_s.append(time_runs(ort_step, 1)[0][0])
                    torch_s.append(time_runs(torch_step, 1)[0][0])
                ratios = [t / o for t, o in zip(torch_s, ort_s)]
                row = dict(arch=arch, batch=batch, threads=threads, pairs=pairs,
                           pytorch_ms=round(statistics.median(torch_s) * 1e3, 1),
                           onnxruntime_ms=round(statistics.median(ort_s) * 1e3, 1),
                           ratio=round(statistics.median(ratios), 3),
                           ratio_quartiles=[round(q, 3) for q in statistics.quantiles(ratios, n=4)[::2]])
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    form = sub.add_parser('formulations', help='time the candidate ONNX scan formulations')
    form.add_argument('--threads', type=int, default=1)
    form.add_argument('--repeats', type=int, default=15)
    form.add_argument('--batch', type=int, default=1)
    paired = sub.add_parser('paired', help='whole classifiers, onnxruntime and PyTorch alternating in one process')
    paired.add_argument('archs', nargs='+')
    paired.add_argument('--batch', type=int, nargs='+', default=[1, 8])
    paired.add_argument('--threads', type=int, default=2)
    paired.add_argument('--pairs', type=int, default=15)
    paired.add_argument('--res', type=int, default=224)
    args = parser.parse_args(argv)
    if args.command == 'paired':
        from mmmsvmamba.models import MSVMamba
        for arch in args.archs:  # before the first export, not minutes into the measurement
            try:
                MSVMamba.parse_arch(arch)
            except (ValueError, TypeError) as error:
                parser.error(str(error))
        compare_paired(args.archs, args.batch, args.threads, args.pairs, args.res)
    else:
        compare_formulations(args.threads, args.repeats, args.batch)


if __name__ == '__main__':
    sys.exit(main())
