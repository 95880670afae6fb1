"""The compiled selective-scan ops (csrc/) against the float64 reference: outputs and every gradient, both ops,
edge lengths and odd half-res maps, chunk and tile boundaries, non-contiguous, misaligned and empty inputs,
gradcheck, operator checks, registration. Every case of the CUDA kernels also runs on the emulated CUDA device
(device 'emulated', see tests/ops/compiled_helpers.py)."""
import os
import shutil

import pytest
import torch

from mmmsvmamba.ops import compiled, selective_scan_fn
from mmmsvmamba.ops import testing as scan_testing
from mmmsvmamba.ops.backend import resolve_backend
from tests.ops.compiled_helpers import (DEVICE_DTYPES, DEVICES, EMULATED, HALF_RES, INPUT_NAMES,
                                        SEQUENCE, assert_scan_close, compiled_ops, make_inputs, require_emulated,
                                        run_scan, tensor_device)


def _cuda_toolkit():
    """Where setup.py finds nvcc (CUDA_HOME, else /usr/local/cuda, else nvcc on PATH), or None."""
    home = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH')
    if home is None and os.path.exists('/usr/local/cuda/bin/nvcc'):
        home = '/usr/local/cuda'
    if home is None and shutil.which('nvcc'):
        home = os.path.dirname(os.path.dirname(shutil.which('nvcc')))
    return home if home and os.path.exists(os.path.join(home, 'bin', 'nvcc')) else None


def test_cpu_kernels_registered():
    assert 'CPU' in compiled.KERNEL_KEYS, f'the CPU extension is not loaded: {compiled.LOAD_ERRORS}'
    for op in compiled.OPS:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f'mmmsvmamba::{op}', 'CPU'), op
    assert resolve_backend(None, torch.device('cpu'), 1, torch.float32) == 'compiled'


def test_cuda_kernels_registered():
    """Fails (not skips) when the CUDA extension could have been built but is missing or incomplete."""
    if os.environ.get('MMMSVMAMBA_WITH_CUDA') == '0':
        pytest.skip('MMMSVMAMBA_WITH_CUDA=0: the CUDA extension was not requested')
    if torch.version.cuda is None or _cuda_toolkit() is None:
        pytest.skip('no CUDA-enabled torch and nvcc: the CUDA extension cannot be built here')
    assert 'CUDA' in compiled.KERNEL_KEYS, (
        f'torch has CUDA and nvcc is at {_cuda_toolkit()}, but the CUDA extension is not loaded: '
        f'{compiled.LOAD_ERRORS}; rebuild with `make build` and read the nvcc errors')
    for op in compiled.OPS:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f'mmmsvmamba::{op}', 'CUDA'), op
    assert not compiled.has_kernel('cuda', torch.float64)  # float64 goes to the PyTorch path on CUDA


def _layouts(inputs):
    """``inputs`` as given, and (unless they are already) the same values with the channel (group) axis of u, delta,
    B and C innermost in memory: the model's channels-last layout, which the kernels read in place."""
    if inputs['u'].movedim(1, -1).is_contiguous():
        return [inputs]
    channels_last = {k: v.detach().movedim(1, -1).contiguous().movedim(-1, 1) if k in ('u', 'delta', 'B', 'C')
                     else v for k, v in inputs.items()}
    return [inputs, channels_last]


def check_against_reference(kind, inputs, delta_softplus=True, sum_routes=True, oracle='reference', seed=1,
                            device=None):
    """Compiled op on ``inputs``, and on the same values in channels-last memory, vs the float64 ``oracle`` path on
    the same values: output and all gradients, and the output's memory layout (channel axis innermost).

    ``device`` 'emulated' runs the CUDA kernels on the emulated device (the inputs are CPU tensors).
    """
    leaves64 = {k: v.detach().to('cpu', torch.float64).requires_grad_() if v is not None else None
                for k, v in inputs.items()}
    expected = run_scan(kind, leaves64, oracle, delta_softplus, sum_routes)
    dy = torch.randn(expected.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected.backward(dy)
    channel_axis = 2 if kind == HALF_RES and not sum_routes else 1
    for layout in _layouts(inputs):
        # detach() keeps the strides, so non-contiguous inputs reach the op as they are
        leaves = {k: v.detach().requires_grad_() if v is not None else None for k, v in layout.items()}
        y = run_scan(kind, leaves, 'compiled', delta_softplus, sum_routes, device)
        assert y.shape == expected.shape
        assert y.dtype == (torch.float64 if inputs['u'].dtype == torch.float64 else torch.float32)
        assert y.movedim(channel_axis, -1).is_contiguous()
        assert_scan_close(y, expected, name='output')
        y.backward(dy.to(y.device, y.dtype))
        for name in INPUT_NAMES:
            if leaves[name] is None:
                continue
            grad = leaves[name].grad
            assert grad is not None and grad.dtype == leaves[name].dtype and grad.shape == leaves[name].shape, name
            assert_scan_close(grad, leaves64[name].grad, name=f'grad of {name}')


@pytest.mark.parametrize('device,dtype', DEVICE_DTYPES)
@pytest.mark.parametrize('length', [1, 37, 300, 1000])  # 300 and 1000: not multiples of any block/chunk size
def test_sequence_matches_reference(device, dtype, length):
    check_against_reference(SEQUENCE, make_inputs(2, 5, (length,), dtype=dtype, device=device), device=device)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('groups', [2, 3])  # groups of 3 and 2 channels: some straddle the 4-channel CUDA blocks
def test_sequence_groups(device, groups):
    check_against_reference(SEQUENCE, make_inputs(2, 6, (70,), groups=groups, device=device), device=device)


@pytest.mark.parametrize('device', DEVICES)
def test_half_res_groups(device):
    check_against_reference(HALF_RES, make_inputs(2, 10, (4, 7), groups=5, device=device), sum_routes=False,
                            device=device)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('with_D,with_bias,softplus', [(False, False, False), (True, False, True),
                                                        (False, True, False)])
def test_optional_inputs(device, with_D, with_bias, softplus):
    for kind, spatial in ((SEQUENCE, (50,)), (HALF_RES, (5, 6))):
        inputs = make_inputs(2, 4, spatial, device=device, with_D=with_D, with_bias=with_bias)
        if not softplus:  # keep dt > 0 (decays below 1) without the softplus
            inputs['delta'] = inputs['delta'].exp()
        check_against_reference(kind, inputs, delta_softplus=softplus, sum_routes=False, device=device)


@pytest.mark.parametrize('device,dtype', DEVICE_DTYPES)
@pytest.mark.parametrize('size', [(1, 1), (3, 5), (7, 4), (1, 6), (5, 1), (13, 11)])
@pytest.mark.parametrize('sum_routes', [True, False])
def test_half_res_matches_reference(device, dtype, size, sum_routes):
    check_against_reference(HALF_RES, make_inputs(2, 3, size, dtype=dtype, device=device), sum_routes=sum_routes,
                            device=device)


@pytest.mark.parametrize('device', DEVICES)
def test_long_sequences(device):
    """A 200x336 map: the full-res sequence (L = 67200) and its 100x168 half-res routes (3 x 16800).

    The oracle is the float64 log-depth PyTorch scan (the sequential loop is too slow at this length;
    tests/ops/test_selective_scan.py ties the two together). On the CUDA kernels both are split into many chunks.
    """
    check_against_reference(SEQUENCE, make_inputs(1, 2, (200 * 336,), device=device), oracle='torch', device=device)
    for sum_routes in (True, False):
        check_against_reference(HALF_RES, make_inputs(1, 2, (100, 168), device=device), sum_routes=sum_routes,
                                oracle='torch', device=device)


# A CUDA tile is 128 positions, a chunk 4 to 64 tiles. With 1 multiprocessor, plan_chunks wants 8 blocks: batch 2 x
# one channel block gives 2, so it splits each row into 4 chunks (if there are 16 tiles or more), else into
# tiles // 4. The lengths sit on tile and chunk boundaries, one below and one above.
BOUNDARY_LENGTHS = [127, 128, 129, 511, 512, 513, 2047, 2048, 2049]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('length', BOUNDARY_LENGTHS)
def test_tile_and_chunk_boundaries(device, length):
    inputs = make_inputs(2, 3, (length,), device=device)
    if device == EMULATED:  # plan as a GPU with one multiprocessor, so that short rows are split too
        require_emulated()
        with scan_testing.set_emulated_multiprocessors(1):
            check_against_reference(SEQUENCE, inputs, device=device)
    else:
        check_against_reference(SEQUENCE, inputs, device=device)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kind,batch,dim,spatial', [
    (SEQUENCE, 0, 3, (10,)), (SEQUENCE, 2, 0, (10,)), (SEQUENCE, 2, 3, (0,)),
    (HALF_RES, 0, 3, (3, 4)), (HALF_RES, 2, 0, (3, 4)), (HALF_RES, 2, 3, (0, 5)), (HALF_RES, 2, 3, (3, 0))])
def test_empty_inputs(device, kind, batch, dim, spatial):
    """Zero-size inputs give empty outputs and zero parameter gradients (no kernel is launched)."""
    inputs = make_inputs(batch, dim, spatial, device=device)
    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    for sum_routes in ((True,) if kind == SEQUENCE else (True, False)):
        y = run_scan(kind, leaves, 'compiled', sum_routes=sum_routes, device=device)
        expected = (batch, dim, *spatial) if kind == SEQUENCE or sum_routes else (batch, 3, dim, *spatial)
        assert y.shape == expected and y.dtype == torch.float32
        y.sum().backward()
        for name in INPUT_NAMES:
            grad = leaves[name].grad
            assert grad is not None and grad.shape == leaves[name].shape, name
            assert not grad.any(), name


def _misaligned(t):
    """A contiguous copy of ``t`` that starts one element past an aligned address: no vector loads."""
    storage = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    view = storage[1:].view(t.shape)
    view.copy_(t)
    assert view.is_contiguous() and view.data_ptr() % 16 != 0
    return view


@pytest.mark.parametrize('device,dtype', [d for d in DEVICE_DTYPES if 'float64' not in str(d)])
def test_misaligned_inputs(device, dtype):
    """Inputs that start one element past an aligned address give the same results: no kernel may assume that a
    tensor's data is aligned beyond its element size (a vectorised load would have to check)."""
    inputs = make_inputs(2, 4, (256,), dtype=dtype, device=device)
    shifted = dict(inputs, **{name: _misaligned(inputs[name]) for name in ('u', 'delta', 'B', 'C')})
    check_against_reference(SEQUENCE, shifted, device=device)


def _non_contiguous(inputs):
    """The same values in strided views: u / delta transposed in memory, B / C as slices of a wider tensor."""
    out = dict(inputs)
    for name in ('u', 'delta'):
        out[name] = inputs[name].transpose(0, 1).contiguous().transpose(0, 1)
    for name in ('B', 'C'):
        wide = torch.cat([inputs[name], torch.zeros_like(inputs[name])], dim=2)  # (batch, G, 2, ...)
        out[name] = wide[:, :, :1]
    out['D'] = torch.stack([inputs['D'], inputs['D']], dim=1)[:, 0]
    assert not any(out[n].is_contiguous() for n in ('u', 'delta', 'B', 'C', 'D'))
    return out


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kind,spatial', [(SEQUENCE, (300,)), (HALF_RES, (6, 9))])
def test_non_contiguous_inputs(device, kind, spatial):
    """Strided inputs give the contiguous inputs' results, including for a non-contiguous output gradient.

    Bit-identical on the CPU, whose kernels fix the order of every sum. The CUDA kernels add the half-res du /
    ddelta (three routes per element), dB / dC (channel blocks) and dA / dD / ddelta_bias (chunks, batch) with
    float atomicAdd in whatever order the blocks run, so there the two runs agree to float32 rounding.
    """
    inputs = make_inputs(2, 4, spatial, device=device)
    strided = _non_contiguous(inputs)
    check_against_reference(kind, strided, sum_routes=False, device=device)
    leaves = [{k: v.detach().requires_grad_() for k, v in x.items()} for x in (inputs, strided)]
    outs = [run_scan(kind, x, 'compiled', sum_routes=False, device=device) for x in leaves]
    same = torch.equal if device == 'cpu' else lambda a, b: assert_scan_close(a, b) or True
    assert same(outs[0], outs[1])
    dy = torch.randn(outs[0].shape[::-1], device=tensor_device(device)).permute(*reversed(range(outs[0].dim())))
    for out in outs:
        out.backward(dy)
    for name in INPUT_NAMES:
        assert same(leaves[0][name].grad, leaves[1][name].grad), name


@pytest.mark.parametrize('kind,spatial,sum_routes', [(SEQUENCE, (9,), True), (HALF_RES, (3, 4), True),
                                                     (HALF_RES, (3, 4), False)])
def test_gradcheck_float64(kind, spatial, sum_routes):
    inputs = make_inputs(2, 3, spatial, groups=1, dtype=torch.float64)
    names = list(inputs)

    def fn(*tensors):
        return run_scan(kind, dict(zip(names, tensors)), 'compiled', sum_routes=sum_routes)

    assert torch.autograd.gradcheck(fn, [inputs[n].requires_grad_() for n in names])


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('out_float', [True, False])
def test_output_dtype(device, out_float):
    dtype = torch.bfloat16 if device == 'cpu' else torch.float16
    if device == EMULATED:
        require_emulated()
        sequence_op, half_res_op = scan_testing.selective_scan_emulated, scan_testing.ms2d_half_res_scan_emulated
    else:
        sequence_op, half_res_op = compiled.selective_scan_compiled, compiled.ms2d_half_res_scan_compiled
    inputs = make_inputs(2, 4, (40,), dtype=dtype, device=device)
    y = sequence_op(**inputs, delta_softplus=True, out_float=out_float)
    assert y.dtype == (torch.float32 if out_float else dtype)
    maps = make_inputs(2, 4, (5, 8), dtype=dtype, device=device)
    y2 = half_res_op(**maps, out_float=out_float)
    assert y2.dtype == (torch.float32 if out_float else dtype)
    if not out_float:
        y32 = sequence_op(**inputs, delta_softplus=True)
        assert torch.equal(y, y32.to(dtype))  # the same float32 result, rounded once


def _op_samples(device):
    seq = make_inputs(2, 4, (37,), device=device)
    maps = make_inputs(2, 4, (5, 3), device=device)
    args = [seq[n] for n in INPUT_NAMES]
    map_args = [maps[n] for n in INPUT_NAMES]
    on = tensor_device(device)
    dy = torch.randn(2, 4, 37, device=on)
    dy_maps = {True: torch.randn(2, 4, 5, 3, device=on), False: torch.randn(2, 3, 4, 5, 3, device=on)}
    ops = compiled_ops(device)

    def grad_leaves(tensors):
        return [t.detach().clone().requires_grad_() for t in tensors]

    samples = [(ops.selective_scan_fwd.default, (*args, True, True)),
               (ops.selective_scan_fwd.default, (*grad_leaves(args[:5]), None, None, False, True)),
               (ops.selective_scan_fwd.default, (*grad_leaves(args), True, False)),
               (ops.selective_scan_bwd.default, (dy, *args, True))]
    for sum_routes in (True, False):
        samples += [(ops.ms2d_half_res_scan_fwd.default, (*grad_leaves(map_args), True, sum_routes, True)),
                    (ops.ms2d_half_res_scan_bwd.default, (dy_maps[sum_routes], *map_args, True, sum_routes))]
    return samples


@pytest.mark.parametrize('device', DEVICES)
def test_opcheck(device):
    """Schema, fake (meta) kernels, autograd registration and AOT dispatch of every op."""
    for op, args in _op_samples(device):
        torch.library.opcheck(op, args)


def test_errors_name_the_problem():
    inputs = make_inputs(2, 4, (10,))
    with pytest.raises(RuntimeError, match='specialised for d_state=1'):
        selective_scan_fn(**dict(inputs, A=inputs['A'].expand(4, 2), B=inputs['B'].expand(2, 1, 2, 10),
                                 C=inputs['C'].expand(2, 1, 2, 10)), backend='compiled')
    with pytest.raises(RuntimeError, match=r'delta must have shape u.shape'):
        torch.ops.mmmsvmamba.selective_scan_fwd(inputs['u'], inputs['delta'][:, :, :5], inputs['A'], inputs['B'],
                                                inputs['C'], None, None, True, True)
    with pytest.raises(RuntimeError, match=r'specialised for d_state = 1'):
        torch.ops.mmmsvmamba.selective_scan_fwd(inputs['u'], inputs['delta'], inputs['A'].expand(4, 2),
                                                inputs['B'], inputs['C'], None, None, True, True)
    with pytest.raises(RuntimeError, match=r'B has 3 groups, which do not divide dim = 4'):
        torch.ops.mmmsvmamba.selective_scan_fwd(inputs['u'], inputs['delta'], inputs['A'],
                                                inputs['B'].expand(2, 3, 1, 10), inputs['C'], None, None, True, True)
    with pytest.raises(RuntimeError, match=r'u must be float32, float64, float16 or bfloat16'):
        torch.ops.mmmsvmamba.selective_scan_fwd(inputs['u'].int(), inputs['delta'], inputs['A'], inputs['B'],
                                                inputs['C'], None, None, True, True)
