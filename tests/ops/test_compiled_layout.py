"""The compiled ops on channels-last inputs, the memory of the model's activations: every backend (the CPU kernels,
the CUDA kernels on a GPU and on the emulated device) reads u and delta in place, without a copy, and returns the
output, du and ddelta with the channel axis innermost. Inputs in other layouts are copied once. (Every case of
test_compiled.py runs in both layouts; the cases here add more channels than one warp holds.)

The cases use 40 channels: two 32-channel warps of the CUDA kernels, the second with 8 valid lanes, and groups of
8 channels, so that one warp spans several groups (the per-lane dB / dC path) as well as one group (the warp-sum
path)."""
import pytest
import torch

from tests.ops.compiled_helpers import (DEVICE_DTYPES, DEVICES, HALF_RES, SEQUENCE, compiled_ops, make_inputs,
                                        tensor_device)
from tests.ops.test_compiled import check_against_reference

DIM = 40
CASES = [(SEQUENCE, 1, (300,), True), (SEQUENCE, 5, (130,), True), (HALF_RES, 1, (13, 11), True),
         (HALF_RES, 1, (13, 11), False), (HALF_RES, 5, (6, 9), False)]


def channels_innermost(t: torch.Tensor, axis: int = 1) -> bool:
    return t.movedim(axis, -1).is_contiguous()


@pytest.mark.parametrize('device,dtype', DEVICE_DTYPES)
@pytest.mark.parametrize('kind,groups,spatial,sum_routes', CASES)
def test_channels_last_inputs_match_reference(device, dtype, kind, groups, spatial, sum_routes):
    inputs = make_inputs(2, DIM, spatial, groups=groups, dtype=dtype, device=device, channels_last=True)
    assert channels_innermost(inputs['u']) and not inputs['u'].is_contiguous()
    check_against_reference(kind, inputs, sum_routes=sum_routes, device=device)


def _ops_and_args(device, kind, sum_routes, channels_last):
    """(forward op, backward op, forward arguments, flags) of one op on float32 inputs of ``DIM`` channels."""
    ops = compiled_ops(device)
    spatial = (300,) if kind == SEQUENCE else (13, 11)
    inputs = make_inputs(2, DIM, spatial, device=device, channels_last=channels_last)
    args = [inputs[n] for n in ('u', 'delta', 'A', 'B', 'C', 'D', 'delta_bias')]
    if kind == SEQUENCE:
        return ops.selective_scan_fwd, ops.selective_scan_bwd, args, (True,)
    return ops.ms2d_half_res_scan_fwd, ops.ms2d_half_res_scan_bwd, args, (True, sum_routes)


def _copies(fn):
    """fn's result and the number of copies (aten::copy_) it made, as the profiler records the ATen calls."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        out = fn()
    return out, sum(event.name == 'aten::copy_' for event in prof.events())


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kind,sum_routes', [(SEQUENCE, True), (HALF_RES, True), (HALF_RES, False)])
def test_channels_last_inputs_are_not_copied(device, kind, sum_routes):
    """Forward and backward on channels-last float32 inputs make no copy and return the channel axis innermost;
    the same inputs in (batch, channel, ...) memory are copied, u and delta once each per op (the counterfactual:
    the count sees copies)."""
    fwd, bwd, args, flags = _ops_and_args(device, kind, sum_routes, channels_last=True)
    channel_axis = 2 if kind == HALF_RES and not sum_routes else 1
    y, copies = _copies(lambda: fwd(*args, *flags, True))
    assert copies == 0 and channels_innermost(y, channel_axis)
    dy = torch.randn(y.movedim(channel_axis, -1).shape, device=tensor_device(device)).movedim(-1, channel_axis)
    grads, copies = _copies(lambda: bwd(dy, *args, *flags))
    assert copies == 0
    assert channels_innermost(grads[0]) and channels_innermost(grads[1])  # du, ddelta

    fwd, bwd, args, flags = _ops_and_args(device, kind, sum_routes, channels_last=False)
    assert _copies(lambda: fwd(*args, *flags, True))[1] == 2
    assert _copies(lambda: bwd(dy, *args, *flags))[1] == 2
