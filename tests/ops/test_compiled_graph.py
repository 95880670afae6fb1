"""The compiled ops inside graphs: torch.compile(fullgraph=True), torch.export and activation checkpointing, on the
ops and on a tiny MSVMamba backbone, with the compiled scan as the default backend (CPU)."""
import pytest
import torch

from mmmsvmamba.models import MSVMamba
from mmmsvmamba.ops import compiled, ms2d_half_res_scan, selective_scan_fn
from tests.ops.compiled_helpers import INPUT_NAMES, make_inputs

# the smallest v3 network: every stage has one block, so both scan ops run at four resolutions
TINY_ARCH = dict(version='v3', dims=24, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=4, gate=False)

pytestmark = pytest.mark.skipif(not compiled.has_kernel('cpu'),
                                reason='needs the compiled CPU ops (test_compiled.py fails without them)')


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """No graphs from earlier runs: inductor's on-disk cache does not key on the ops' fake kernels, so a graph
    cached before a kernel changed its output layout would assert the old strides."""
    torch._dynamo.reset()
    with torch._inductor.config.patch(fx_graph_cache=False):
        yield
    torch._dynamo.reset()


def scan_both(u, delta, A, B, C, D, delta_bias):
    """Both ops on one (batch, dim, 6, 10) map: the full-res sequence and the half-res routes of the same map."""
    seq = selective_scan_fn(u.flatten(2), delta.flatten(2), A, B.flatten(3), C.flatten(3), D, delta_bias, True)
    half = ms2d_half_res_scan(u, delta, A, B, C, D, delta_bias, True, sum_routes=False)
    return seq.square().mean() + half.square().mean()


def _leaves(inputs):
    return [inputs[n].detach().clone().requires_grad_() for n in INPUT_NAMES]


def test_inductor_compiles_both_ops_fwd_bwd():
    inputs = make_inputs(2, 4, (6, 10))
    eager, traced = _leaves(inputs), _leaves(inputs)
    expected = scan_both(*eager)
    expected.backward()
    out = torch.compile(scan_both, fullgraph=True)(*traced)
    out.backward()
    torch.testing.assert_close(out, expected)
    for name, a, b in zip(INPUT_NAMES, traced, eager):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_activation_checkpointing():
    """torch.utils.checkpoint reruns the forward in backward and lets saved tensors be unpacked only once."""
    inputs = make_inputs(2, 4, (6, 10))
    eager, checkpointed = _leaves(inputs), _leaves(inputs)
    scan_both(*eager).backward()
    torch.utils.checkpoint.checkpoint(scan_both, *checkpointed, use_reentrant=False).backward()
    for name, a, b in zip(INPUT_NAMES, checkpointed, eager):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def _tiny_backbone():
    torch.manual_seed(0)
    model = MSVMamba(arch=TINY_ARCH)
    model.init_weights()
    return model


def test_backbone_compiles_without_graph_breaks():
    """fullgraph=True raises on any graph break; aot_eager traces forward and backward through the fake
    kernels and the registered autograd (inductor's code generation is left to the op-level test: it takes
    minutes on a backbone and tests torch rather than these ops)."""
    model = _tiny_backbone()
    x = torch.randn(2, 3, 64, 72)
    expected = model(x)
    sum(o.square().mean() for o in expected).backward()
    expected_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    outs = torch.compile(model, fullgraph=True, backend='aot_eager')(x)
    sum(o.square().mean() for o in outs).backward()
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected_grads[name], msg=name)


def test_backbone_exports_with_the_compiled_ops():
    model = _tiny_backbone().eval()
    x = torch.randn(1, 3, 64, 72)
    program = torch.export.export(model, (x,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == 'call_function'}
    # an exported block calls both scans as one op (ops.block_scan); running the program runs its eager kernel
    assert 'mmmsvmamba.ms2d_block_scan_fwd.default' in targets
    with torch.no_grad():
        expected = model(x)
        outs = program.module()(x)
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref)
