"""ONNX export (mmmsvmamba.deploy, tools/export_onnx.py): the scan translations against the definition, small
models exported once with dynamic shapes (one through tools/export_onnx.py) and run by onnxruntime at sizes not
used at export. The CLI's answers to user mistakes are in tests/tools/test_cli_errors.py.

Exports cost seconds each (torch.export with symbolic shapes), so each graph is exported once per module and
checked at several sizes."""
import json
import os
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('onnx', reason='the deploy extras are not installed (requirements/deploy.txt)')
pytest.importorskip('onnxscript', reason='the deploy extras are not installed (requirements/deploy.txt)')
pytest.importorskip('onnxruntime', reason='the deploy extras are not installed (requirements/deploy.txt)')

import onnx  # noqa: E402

from mmmsvmamba.deploy import build_model, build_session, export_onnx, measure, onnx_scan, run  # noqa: E402
from mmmsvmamba.deploy.onnxruntime import compare_with_torch  # noqa: E402
from mmmsvmamba.ops import compiled, half_res_routes, merge_half_res_routes, selective_scan_ref  # noqa: E402
from mmmsvmamba.ops.selective_scan import _selective_scan_torch  # noqa: E402
from tests.tools.conftest import run_tool  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHOTO = os.path.join(ROOT, 'tests', 'data', 'grace_hopper.jpg')
TOLERANCE = 1e-4  # max |onnxruntime - PyTorch| / max |PyTorch|, the bar

pytestmark = pytest.mark.skipif(not compiled.has_kernel('cpu'), reason='export needs the compiled CPU ops')

# (D, bias, softplus, groups) per variant; one graph holds them all, so the scan ops are exported once
SEQ_VARIANTS = [(True, True, True, 1), (False, False, False, 1), (True, False, True, 2), (False, True, False, 4)]
DIM = 8


class _ScanParameters(torch.nn.Module):
    """A, D and delta_bias of DIM channels, as an MS2D route has them."""

    def __init__(self):
        super().__init__()
        self.A = torch.nn.Parameter(-torch.exp(torch.randn(DIM, 1)))
        self.D = torch.nn.Parameter(torch.randn(DIM))
        self.bias = torch.nn.Parameter(torch.randn(DIM))


class _SequenceScans(_ScanParameters):

    def args(self, u, delta, Bs, Cs, variant):
        with_d, with_bias, softplus, groups = variant
        bias = self.bias if with_bias else None
        if not softplus:  # keep dt >= 0, as softplus would: a negative dt grows the state exponentially
            delta, bias = delta.abs(), None if bias is None else bias.abs()
        return (u, delta, self.A, Bs[groups], Cs[groups], self.D if with_d else None, bias, softplus)

    def forward(self, u, delta, B1, C1, B2, C2, B4, C4):
        Bs, Cs = {1: B1, 2: B2, 4: B4}, {1: C1, 2: C2, 4: C4}
        return tuple(torch.ops.mmmsvmamba.selective_scan_fwd(*self.args(u, delta, Bs, Cs, v), True)
                     for v in SEQ_VARIANTS)


def _seq_inputs(batch, length, gen):
    def t(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale
    return (t(batch, DIM, length), t(batch, DIM, length, scale=2.0),
            *[x for g in (1, 2, 4) for x in (t(batch, g, 1, length), t(batch, g, 1, length))])


def _export_module(module, inputs, dynamic_shapes, path, recurrence=None):
    program = torch.onnx.export(module, inputs, dynamo=True, dynamic_shapes=dynamic_shapes, optimize=False,
                                opset_version=onnx_scan.OPSET, verbose=False,
                                custom_translation_table=onnx_scan.translation_table(recurrence))
    program.save(str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return build_session(str(path), threads=1)


def _sequence_dims(n_inputs=8):
    batch, length = torch.export.Dim('batch'), torch.export.Dim('length')
    return ({0: batch, 2: length}, {0: batch, 2: length}) + ({0: batch, 3: length}, ) * (n_inputs - 2)


@pytest.fixture(scope='module')
def sequence_graph(tmp_path_factory):
    torch.manual_seed(0)
    module = _SequenceScans()
    path = tmp_path_factory.mktemp('onnx') / 'scans.onnx'
    return module, _export_module(module, _seq_inputs(2, 40, torch.Generator().manual_seed(1)), _sequence_dims(),
                                  path)


def _rel_err(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def _reference(module, inputs, variant):
    u, delta, A, B, C, D, bias, softplus = module.args(*inputs[:2], {1: inputs[2], 2: inputs[4], 4: inputs[6]},
                                                      {1: inputs[3], 2: inputs[5], 4: inputs[7]}, variant)
    d64 = lambda t: None if t is None else t.detach().double()  # noqa: E731
    return selective_scan_ref(d64(u), d64(delta), d64(A), d64(B), d64(C), d64(D), d64(bias), softplus).numpy()


# lengths around one chunk (16), around chunk * 2**k, where the cross-chunk doubling steps change, and 112 / 113,
# where the chunk summaries after their zero row fill one chunk of chunks (8) / start a second
@pytest.mark.parametrize('length', [1, 2, 15, 16, 17, 31, 33, 112, 113, 255, 256, 257, 1023, 1024, 1025, 4097])
def test_selective_scan_translation_matches_reference(sequence_graph, length):
    module, session = sequence_graph
    inputs = _seq_inputs(3, length, torch.Generator().manual_seed(length))
    outputs = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)})
    for variant, got in zip(SEQ_VARIANTS, outputs):
        assert got.dtype == np.float32 and got.shape == (3, DIM, length)
        assert _rel_err(got, _reference(module, inputs, variant)) < 1e-5, variant


def test_trained_size_decays_do_not_overflow(sequence_graph):
    """Decays of exp(-50) per step (trained channels have such dt * A): only factors in (0, 1] are multiplied."""
    module, session = sequence_graph
    gen = torch.Generator().manual_seed(3)
    inputs = list(_seq_inputs(2, 300, gen))
    inputs[1] = torch.full_like(inputs[1], 60.0)  # softplus(60 + bias) ~ 60: dt * A far below -88 for most channels
    outputs = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)})
    for variant, got in zip(SEQ_VARIANTS, outputs):
        assert np.isfinite(got).all()
        assert _rel_err(got, _reference(module, inputs, variant)) < 1e-5, variant


def test_no_length_limit(sequence_graph):
    """The Loop counts its steps at run time: 300,000 positions (18,750 chunks, 2,344 chunks of chunks, 12 steps),
    beyond the 262,144 that the fixed 14 doublings of earlier exports covered and that 11 steps would cover, are
    scanned exactly. Memory without end makes a missing step show: dt = 1e-30 without softplus, so every decay
    rounds to exactly 1 in float32 and each state is the sum of all drives before it (B > 0, u > 0: all positive).
    With a decay below 1 the part a short Loop drops would have decayed below float32 rounding, and float32 cannot
    hold a decay close enough to 1 to keep it (its rounding alone then costs percents over 300,000 steps)."""
    module, session = sequence_graph
    inputs = list(_seq_inputs(1, 300_000, torch.Generator().manual_seed(2)))
    inputs[0] = inputs[0].abs() + 1
    inputs[1] = torch.full_like(inputs[1], 1e-30)
    inputs[2] = inputs[2].abs() + 1
    got = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)})[1]
    u, delta, A, B, C, D, bias, softplus = module.args(*inputs[:2], {1: inputs[2]}, {1: inputs[3]}, SEQ_VARIANTS[1])
    ref = _selective_scan_torch(*(t.detach().double() for t in (u, delta, A, B, C)), None, None, softplus)
    assert _rel_err(got, ref.numpy()) < 1e-5


class _HalfResScans(_ScanParameters):

    def forward(self, u, delta, B, C):
        op = torch.ops.mmmsvmamba.ms2d_half_res_scan_fwd
        B2, C2 = _two_groups(B), _two_groups(C)
        return (op(u, delta, self.A, B, C, self.D, self.bias, True, True, True),
                op(u, delta, self.A, B, C, self.D, self.bias, True, False, True),
                op(u, delta.abs(), self.A, B, C, None, None, False, True, True),  # dt >= 0 without softplus
                op(u, delta, self.A, B2, C2, self.D, self.bias, True, False, True))


def _two_groups(values):
    """(batch, 1, 1, ...) B or C -> (batch, 2, 1, ...): two groups that differ."""
    return torch.cat([values, 1 - values], dim=1)


def test_half_res_translation_matches_reference(tmp_path):
    torch.manual_seed(0)
    module = _HalfResScans()
    gen = torch.Generator().manual_seed(1)

    def inputs(batch, height, width):
        return (torch.randn(batch, DIM, height, width, generator=gen),
                torch.randn(batch, DIM, height, width, generator=gen),
                torch.randn(batch, 1, 1, height, width, generator=gen),
                torch.randn(batch, 1, 1, height, width, generator=gen))
    batch, height, width = (torch.export.Dim(n) for n in ('batch', 'height', 'width'))
    maps, groups = {0: batch, 2: height, 3: width}, {0: batch, 3: height, 4: width}
    session = _export_module(module, inputs(2, 5, 7), (maps, maps, groups, groups), tmp_path / 'half.onnx')
    d64 = lambda t: None if t is None else t.detach().double()  # noqa: E731
    for size in ((1, 1), (3, 4), (6, 11), (13, 9), (24, 31)):
        x = inputs(2, *size)
        outputs = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), x)})
        routes = [half_res_routes(t.double()) for t in x]
        for got, (with_d, softplus, sum_routes, groups) in zip(outputs, [(True, True, True, 1), (True, True, False, 1),
                                                                         (False, False, True, 1),
                                                                         (True, True, False, 2)]):
            B, C = (routes[2], routes[3]) if groups == 1 else (_two_groups(routes[2]), _two_groups(routes[3]))
            y = selective_scan_ref(routes[0], routes[1] if softplus else routes[1].abs(), d64(module.A), B, C,
                                   d64(module.D) if with_d else None, d64(module.bias) if with_d else None, softplus)
            ref = merge_half_res_routes(y, *size, sum_routes)
            ref = (ref if sum_routes else ref.transpose(1, 2)).numpy()
            assert got.shape == ref.shape
            assert _rel_err(got, ref) < 1e-5, (size, sum_routes, groups)


class _BlockScans(torch.nn.Module):
    """Both scans of an MS2D block through ``ms2d_block_scan_fwd`` (its eager kernel: the two compiled ops). The
    decays are slow (A near 0), so a state carried from the full-res sequence into the half-res routes would
    persist through them."""

    def __init__(self):
        super().__init__()
        self.full_res, self.half_res = _ScanParameters(), _ScanParameters()
        with torch.no_grad():
            self.full_res.A.mul_(0.01)
            self.half_res.A.mul_(0.01)

    def forward(self, u, delta, B, C, half_u, half_delta, half_B, half_C):
        full, half = self.full_res, self.half_res
        args = (u, delta, full.A, B, C, full.D, full.bias, half_u, half_delta, half.A, half_B, half_C, half.D,
                half.bias)
        full_y, summed = torch.ops.mmmsvmamba.ms2d_block_scan_fwd(*args, True)
        return full_y, summed, torch.ops.mmmsvmamba.ms2d_block_scan_fwd(*args, False)[1]


def test_block_translation_matches_the_two_scans(tmp_path):
    """onnx_scan._block_scan: one sequence of the full-res scan, a restart position and the half-res routes gives
    each scan's own result (mutation: a restart row of decay 1 instead of 0 carries the state over)."""
    torch.manual_seed(0)
    module = _BlockScans()
    gen = torch.Generator().manual_seed(1)

    def inputs(batch, length, height, width):
        def t(*shape):
            return torch.randn(*shape, generator=gen)
        return (t(batch, DIM, length), t(batch, DIM, length), t(batch, 1, 1, length), t(batch, 1, 1, length),
                t(batch, DIM, height, width), t(batch, DIM, height, width), t(batch, 1, 1, height, width),
                t(batch, 1, 1, height, width))
    batch, length, height, width = (torch.export.Dim(n) for n in ('batch', 'length', 'height', 'width'))
    sequence, groups = {0: batch, 2: length}, {0: batch, 3: length}
    maps, map_groups = {0: batch, 2: height, 3: width}, {0: batch, 3: height, 4: width}
    session = _export_module(module, inputs(2, 40, 5, 7), (sequence, sequence, groups, groups, maps, maps,
                                                           map_groups, map_groups), tmp_path / 'block.onnx')
    for size in ((1, 1, 1), (17, 3, 4), (64, 6, 11), (300, 13, 9)):
        x = inputs(2, *size)
        outputs = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), x)})
        with torch.no_grad():
            expected = module(*x)
        for got, ref in zip(outputs, expected):
            assert got.shape == tuple(ref.shape)
            assert _rel_err(got, ref.numpy()) < 1e-5, size


# ----------------------------------------------------------------------------------------------------------------
# Models: exported once at deploy.EXAMPLE_SHAPE, run at other sizes on the real photograph

TINY_V1 = dict(version='v1', dims=16, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=2.0, gate=True)
TINY_V3 = dict(version='v3', dims=16, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=2.0, gate=False)


def _photo(height, width, batch=2):
    """The photograph resized to (height, width), normalised like ImageNet, in a batch with its mirror image."""
    from PIL import Image
    image = Image.open(PHOTO).convert('RGB').resize((width, height), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)
    mean = torch.tensor([123.675, 116.28, 103.53])[:, None, None]
    std = torch.tensor([58.395, 57.12, 57.375])[:, None, None]
    x = (x - mean) / std
    return torch.stack([x, x.flip(-1)][:batch])


def _export_with_cli(tmp_path, args):
    path = str(tmp_path / 'model.onnx')
    run_tool([sys.executable, 'tools/export_onnx.py', *args, path])
    return path


@pytest.fixture(scope='module')
def v1_classifier(tmp_path_factory):
    """A v1 ImageNet classifier with its weights in a checkpoint, exported through the CLI, the weights as external
    data."""
    tmp = tmp_path_factory.mktemp('cls')
    torch.manual_seed(0)
    model = build_model(arch=TINY_V1, num_classes=10)
    checkpoint = str(tmp / 'classifier.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    path = _export_with_cli(tmp, ['--arch', json.dumps(TINY_V1), '--num-classes', '10', '--checkpoint', checkpoint,
                                  '--external-data'])
    return model, path


def test_v1_classifier_graph(v1_classifier):
    _, path = v1_classifier
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3])), dims  # dynamic B, H, W
    assert all(n.domain in ('', 'ai.onnx') for n in proto.graph.node)  # standard operators only
    ops = [n.op_type for n in proto.graph.node]
    # the only control flow: one Loop across the chunks of each block's scans (the full-res and the half-res scan
    # are one sequence, onnx_scan._block_scan)
    assert 'Scan' not in ops and 'If' not in ops and ops.count('Loop') == sum(TINY_V1['depths'])
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta['mmmsvmamba.preprocess'])['std'] == [58.395, 57.12, 57.375]
    # the weights are in the file beside the graph, and stored as the operators take them: nothing is left for
    # onnxruntime to compute from them at session creation (reshaping the Linear2d weights into 1x1 kernels,
    # splitting v1's in_proj), which would hold two copies at once
    graph = onnx.load(path, load_external_data=False).graph
    stored = {t.name for t in graph.initializer}
    assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer if len(t.raw_data) > 4096)
    assert sum(t.ByteSize() for t in graph.initializer) < os.path.getsize(path + '.data') / 10
    computed = [n.op_type for n in graph.node if n.input and set(n.input) <= stored]
    assert not computed, computed


_PEAKS_OF_RUNS = '''
import sys
import numpy as np
from mmmsvmamba.deploy import build_session, run
def peak_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
session = build_session(sys.argv[1], threads=1)
images = np.random.default_rng(0).standard_normal((2, 3, 896, 896), dtype=np.float32)
before = peak_mb()
run(session, images)
first = peak_mb() - before
run(session, images)
run(session, images)
print(first, peak_mb() - before)
'''


@pytest.mark.skipif(not os.path.exists('/proc/self/status'), reason='reads the peak resident set from /proc')
def test_later_runs_at_a_shape_do_not_raise_the_peak(v1_classifier):
    """deploy.onnxruntime._run_options: onnxruntime allocates a shape's tensors one by one on its first run and as
    one planned block from the second; unless the first run hands its arena regions back, the block comes on top
    of them (measured here: 96 MB peak after the first run, 180 MB after three without, 96 MB with; 120 MB flat
    since build_session's arena grows by requests, docs/deploy.md "Peak memory")."""
    import subprocess
    first, later = map(float, subprocess.run([sys.executable, '-c', _PEAKS_OF_RUNS, v1_classifier[1]], cwd=ROOT,
                                             check=True, capture_output=True, text=True).stdout.split()[-2:])
    assert later < 1.25 * first, (first, later)


def test_v1_classifier_matches_pytorch_at_new_sizes(v1_classifier):
    model, path = v1_classifier
    session = build_session(path, threads=2)
    for height, width in ((160, 128), (97, 143)):  # neither is the export's 200x232; 97x143 is odd at each stage
        errors = compare_with_torch(model, session, _photo(height, width))
        assert errors['logits'] < TOLERANCE, (height, width, errors)


# ----------------------------------------------------------------------------------------------------------------
# UperNet segmentor (mmseg): the ADE20K config with a small backbone and heads

SEG_CONFIG = os.path.join(ROOT, 'configs', 'upernet_msvmamba_t_160k_ade20k.py')
SEG_OPTIONS = {
    'model.backbone': dict(_delete_=True, type='MSVMamba', arch=TINY_V3),  # no init_cfg: no ImageNet download
    'model.decode_head.in_channels': [16, 32, 64, 128], 'model.decode_head.channels': 16,
    'model.decode_head.num_classes': 5, 'model.auxiliary_head.in_channels': 64,
    'model.auxiliary_head.channels': 8, 'model.auxiliary_head.num_classes': 5,
}


def test_upernet_segmentor_matches_pytorch_at_new_sizes(tmp_path):
    pytest.importorskip('mmseg', reason='mmsegmentation is not installed')
    torch.manual_seed(0)
    model = build_model(config=SEG_CONFIG, cfg_options=SEG_OPTIONS)
    info = export_onnx(model, str(tmp_path / 'upernet.onnx'))
    assert info['outputs'] == ['seg_logits', 'seg_mask']
    session = build_session(info['path'], threads=2)
    for height, width in ((160, 128), (97, 143)):
        images = _photo(height, width)
        errors = compare_with_torch(model, session, images)
        assert errors['seg_logits'] < TOLERANCE, (height, width, errors)
        assert errors['seg_mask'] < 1e-3, (height, width, errors)  # argmax: only near-ties may flip
        logits, mask = run(session, images)
        assert logits.shape == (2, 5, height, width) and mask.shape == (2, height, width)


def _graph_onnxruntime_runs(path):
    """The graph onnxruntime runs (all optimisations, as build_session), without its weights."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = path + '.optimised.onnx'
    ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    return onnx.load(options.optimized_model_filepath, load_external_data=False).graph


def _transposes_onnxruntime_keeps(path):
    """The perms of the Transpose nodes left in the graph onnxruntime runs."""
    return [list(onnx.helper.get_attribute_value(a)) for n in _graph_onnxruntime_runs(path).node
            if n.op_type == 'Transpose' for a in n.attribute if a.name == 'perm']


@pytest.fixture(scope='module')
def v3_classifier_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('v3') / 'v3.onnx')
    torch.manual_seed(0)
    export_onnx(build_model(arch=TINY_V3, num_classes=10), path)
    return path


def test_blocks_of_a_stage_share_their_size_arithmetic(v3_classifier_path, tmp_path):
    """docs/deploy.md, "Size arithmetic": the positions, orders and shapes that a block's scans compute from the
    map size are computed once per stage (export._merge_equal_shapes), so three blocks in stage 2 add no Range,
    Mod or Div node to the one-block graph; and the shared values are the right ones at sizes the export did not
    see."""
    deeper = dict(TINY_V3, depths=[1, 3, 1, 1])
    torch.manual_seed(0)
    model = build_model(arch=deeper, num_classes=10)
    path = export_onnx(model, str(tmp_path / 'deeper.onnx'))['path']

    def size_ops(graph_path):
        ops = [n.op_type for n in onnx.load(graph_path, load_external_data=False).graph.node]
        return {op: ops.count(op) for op in ('Range', 'Mod', 'Div', 'Loop')}
    one_block, three_blocks = size_ops(v3_classifier_path), size_ops(path)
    assert three_blocks['Loop'] == one_block['Loop'] + 2  # one per block: the blocks are there
    assert {k: v for k, v in three_blocks.items() if k != 'Loop'} == {k: v for k, v in one_block.items()
                                                                       if k != 'Loop'}, (one_block, three_blocks)
    session = build_session(path, threads=2)
    for height, width in ((160, 128), (97, 143)):
        errors = compare_with_torch(model, session, _photo(height, width))
        assert errors['logits'] < TOLERANCE, (height, width, errors)


def _classifier_path(family, v1_classifier, v3_classifier_path):
    return v1_classifier[1] if family == 'v1' else v3_classifier_path


@pytest.mark.parametrize('family', ['v1', 'v3'])
def test_no_slow_transposes(v1_classifier, v3_classifier_path, family):
    """docs/deploy.md, "The scan in ONNX", step 0: no Transpose that onnxruntime runs swaps the two innermost axes
    (element by element, 20-80 times slower than moving channel blocks: the column-major routes of channel-major
    maps did), and the scans' sequences are not transposed (their transposes cancel or fuse into the convolutions'
    output reordering)."""
    perms = _transposes_onnxruntime_keeps(_classifier_path(family, v1_classifier, v3_classifier_path))
    assert perms, 'expected some transposes (the routes of the half-resolution scans)'
    for perm in perms:  # for the (B, D, L) -> (B, L, D) of a sequence, too: [0, 2, 1]
        assert perm[-2:] != [len(perm) - 1, len(perm) - 2], perm


@pytest.mark.parametrize('family', ['v1', 'v3'])
def test_scan_inputs_come_as_the_translation_reads_them(v1_classifier, v3_classifier_path, family):
    """docs/deploy.md, "The scan in ONNX", step 1: delta comes out of its projection (a MatMul over the channels,
    its bias included) in the layout the translation reads, so every softplus starts from that MatMul: not from
    onnxruntime's reorder of a blocked convolution output (to channels-last on one thread: what a 1x1 Conv as delta
    projection cost), nor from an addition of the bias (a pass over every element); and B and C reach the scans by
    Reshapes: the graph onnxruntime runs keeps no Transpose of them."""
    graph = _graph_onnxruntime_runs(_classifier_path(family, v1_classifier, v3_classifier_path))
    producers = {output: node for node in graph.node for output in node.output}
    clips = [node for node in graph.node if node.op_type == 'Clip']
    assert len(clips) == 2 * sum((TINY_V1 if family == 'v1' else TINY_V3)['depths'])  # two softpluses per block

    def source(name):  # the node that computed a value, through Reshapes (which copy nothing)
        node = producers[name]
        return source(node.input[0]) if node.op_type == 'Reshape' else node.op_type
    sources = {source(clip.input[0]) for clip in clips}
    assert sources == {'MatMul'}, sources
    # B and C, split from the x projection's output (B, h, w, dt_rank + 2), move only an axis of size 1
    split_transposes = [node for node in graph.node if node.op_type == 'Transpose' and node.input[0] in producers
                        and producers[node.input[0]].op_type == 'Split']
    assert not split_transposes, [node.name for node in split_transposes]


@pytest.mark.parametrize('family', ['v1', 'v3'])
def test_reductions_run_over_trailing_axes(v1_classifier, v3_classifier_path, family):
    """docs/deploy.md, "Reductions": every ReduceMean and ReduceSum of the exported graph reduces the innermost
    axes of its input; onnxruntime reduces over leading or middle axes on one thread, 4-7 times slower at batch 1
    (the norm over the channels of v3's (B, C, H, W) maps, the squeeze-excite mean over the (H, W) of v1's
    (B, H, W, C) maps and the sums of the three half-res routes are matmuls or additions instead)."""
    model = onnx.load(_classifier_path(family, v1_classifier, v3_classifier_path), load_external_data=False)
    graph = onnx.shape_inference.infer_shapes(model).graph  # the ranks inside the scans' translations too
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.value_info, *graph.input]}
    constants = {n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                 if n.op_type == 'Constant' and n.attribute[0].name == 'value'}
    constants.update((t.name, onnx.numpy_helper.to_array(t)) for t in graph.initializer
                     if t.data_location != onnx.TensorProto.EXTERNAL)  # the axes are small: stored in the graph
    reductions = [n for n in graph.node if n.op_type in ('ReduceMean', 'ReduceSum')]
    assert reductions, 'expected the pooling before the head'
    for node in reductions:
        rank = ranks[node.input[0]]
        axes = sorted(int(a) % rank for a in constants[node.input[1]])
        assert axes == list(range(rank - len(axes), rank)), (node.name, rank, axes)


@pytest.mark.parametrize('name', list(measure.FORMULATIONS))
def test_measured_formulations_compute_the_scan(tmp_path, name):
    """Each formulation that ``deploy.measure formulations`` times computes the scan (its timings compare like with
    like), at a length that is no multiple of any chunk length."""
    torch.manual_seed(0)
    module = measure._OneScan(DIM)
    path = str(tmp_path / 'scan.onnx')
    measure.export_one_scan(path, module, measure.FORMULATIONS[name])
    session = build_session(path, threads=1)
    inputs = measure._scan_inputs(2, DIM, 300)
    got, = session.run(None, {i.name: np.ascontiguousarray(t.numpy()) for i, t in zip(session.get_inputs(), inputs)})
    d64 = [t.double() for t in (*inputs, module.A, module.D, module.delta_bias)]
    u, delta, B, C, A, D, bias = d64
    assert _rel_err(got, selective_scan_ref(u, delta, A.detach(), B, C, D.detach(), bias.detach(), True).numpy()) < 1e-5


def test_paired_measurement():
    """deploy.measure paired: both runtimes timed on the same classifier, the ratio the median of the per-pair
    ratios (so within their quartiles)."""
    row, = measure.compare_paired([TINY_V3], batches=(2,), threads=1, pairs=5, res=96)
    assert row['batch'] == 2 and row['pairs'] == 5 and row['pytorch_ms'] > 0 and row['onnxruntime_ms'] > 0
    low, high = row['ratio_quartiles']
    assert low <= row['ratio'] <= high


def test_paired_measurement_refuses_an_unknown_arch_before_exporting(capsys):
    with pytest.raises(SystemExit) as exit_info:
        measure.main(['paired', 'tiny', 'nanoo'])
    assert exit_info.value.code == 2
    assert "error: unknown MSVMamba arch 'nanoo'" in capsys.readouterr().err
