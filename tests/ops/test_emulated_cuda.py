"""The emulated CUDA device (csrc/emulated_cuda/) itself: warp shuffles against CUDA's documented semantics, block
barriers, shared memory, atomics and thread indices, every fault it claims to catch, and the chunk plan of the
CUDA kernels at the largest admitted sequence length.

The scan kernels on the emulated device are tested with the other devices in test_compiled.py.
"""
import importlib
import pathlib

import pytest
import torch
from _pytest.mark.structures import ParameterSet

from mmmsvmamba.ops import compiled
from tests.ops.compiled_helpers import require_emulated


@pytest.fixture
def ops():
    return require_emulated()


def test_emulated_kernels_registered(ops):
    for op in compiled.OPS:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f'{compiled.EMULATED_NAMESPACE}::{op}', 'CPU'), op


def expected_shuffle(op, width, arg, mask):
    """CUDA C++ Programming Guide, warp shuffle functions: the value lane l of a width-`width` shuffle receives."""
    out = []
    for lane in range(32):
        if not mask >> lane & 1:
            out.append(-1)
            continue
        segment = lane // width * width
        if op == 'idx':
            src = segment + arg % width
        elif op == 'idx_lane':
            src = segment + (lane + arg) % width
        elif op == 'up':  # the lower `arg` lanes of each segment keep their value
            src = lane - arg if lane - segment >= arg else lane
        elif op == 'down':  # so do the upper `arg` lanes
            src = lane + arg if lane - segment + arg < width else lane
        else:  # xor: a lane may read an earlier segment, never a later one
            src = lane ^ arg if lane ^ arg < segment + width else lane
        out.append(100 + src)
    return out


@pytest.mark.parametrize('width', [1, 2, 4, 8, 16, 32])
@pytest.mark.parametrize('op,arg', [('idx', 0), ('idx', 5), ('idx', 37), ('idx_lane', 3), ('up', 1), ('up', 3),
                                    ('up', 16), ('down', 1), ('down', 5), ('down', 16), ('xor', 1), ('xor', 6),
                                    ('xor', 16), ('xor', 31)])
def test_shuffle_semantics(ops, op, arg, width):
    got = ops._emulator_shuffle(op, width, arg, 0xffffffff).tolist()
    assert got == expected_shuffle(op, width, arg, 0xffffffff)


def test_shuffle_with_a_partial_mask(ops):
    """Lanes outside the mask do not take part; those inside read each other."""
    mask = 0x0000ffff
    for op, width, arg in (('down', 16, 1), ('up', 8, 2), ('xor', 16, 8), ('idx_lane', 16, 5)):
        assert ops._emulator_shuffle(op, width, arg, mask).tolist() == expected_shuffle(op, width, arg, mask)
    with pytest.raises(RuntimeError, match='lane 15 reads lane 16, which the mask does not name'):
        ops._emulator_shuffle('down', 32, 1, mask)


@pytest.mark.parametrize('block,blocks', [(32, 1), (100, 3), (128, 64), (1024, 8)])
def test_barrier_shared_memory_and_atomics(ops, block, blocks):
    """A shared-memory tree sum over __syncthreads in each block, atomicAdd across blocks (on two workers)."""
    total, right = ops._emulator_block_sum(block, blocks).tolist()
    assert total == blocks * block * (block - 1) // 2
    assert right == blocks * block


@pytest.mark.parametrize('shape', [(8, 4, 2), (3, 1, 5), (1, 1, 64), (1024, 1, 1)])
def test_thread_indices(ops, shape):
    bx, by, bz = shape
    z, y, x = torch.meshgrid(torch.arange(bz), torch.arange(by), torch.arange(bx), indexing='ij')
    assert torch.equal(ops._emulator_layout(bx, by, bz), x + 100 * y + 10000 * z)


# case -> what the message must say; each is a loud error that names kernel, block and thread (or the launch)
FAULTS = {
    'lane_not_in_mask': r'block \(0, 0, 0\), thread \(0, 0, 0\): __shfl_sync with mask 0x00000002 '
                        r'that does not name the calling lane 0',
    'reads_outside_mask': r'thread \(\d+, 0, 0\): __shfl_sync: lane 0 reads lane 5, which the mask does not name',
    # which exiting lane finds which waiting one first is up to the schedule (MMMSVMAMBA_EMULATED_SEED)
    'lane_exited': r'(thread \((1[6-9]|2\d|3[01]), 0, 0\): exited while lane ([0-9]|1[0-5]) waits for it '
                   r'in __shfl_sync|__shfl_sync names lane (1[6-9]|2\d|3[01]), which has exited)',
    'different_sync_points': r'lanes of one mask at different sync points',
    'bad_width': r'__shfl_sync with width 12: it must be a power of two',
    'syncthreads_after_exit': r'(thread \([3-6]\d, 0, 0\): exited while thread \(\d+, 0, 0\) waits at __syncthreads|'
                              r'__syncthreads after thread \([3-6]\d, 0, 0\) of the block has exited)',
    'divergent_syncthreads': r'threads of the block at different __syncthreads',
    'syncthreads_in_warp_op': r'(__syncwarp names lane 0, which waits at __syncthreads|'
                              r'thread \((0|32), 0, 0\): __syncthreads while lane \d+ waits for this lane in '
                              r'__syncwarp)',
    'deadlock': r'block \(0, 0, 0\): deadlock, no thread can run; thread \(0, 0, 0\) waits in __syncwarp',
    'grid_x': r'invalid launch: grid \(2147483648, 1, 1\) exceeds the limits',
    'grid_y': r'invalid launch: grid \(1, 65536, 1\) exceeds the limits',
    'grid_z': r'invalid launch: grid \(1, 1, 65536\) exceeds the limits',
    'zero_grid': r'invalid launch: grid \(0, 1, 1\) has a zero dimension',
    'block_threads': r'invalid launch: block \(32, 33, 1\) has 1056 threads, more than 1024',
    'block_x': r'invalid launch: block \(1025, 1, 1\) exceeds the limits',
    'block_z': r'invalid launch: block \(1, 1, 65\) exceeds the limits',
    'dynamic_shared': r'invalid launch: 49153 bytes of dynamic shared memory, more than 49152',
}


@pytest.mark.parametrize('case', sorted(FAULTS))
def test_faults_fail_loudly(ops, case):
    with pytest.raises(RuntimeError, match=r'emulated CUDA device: kernel .*fault_kernel.*' + FAULTS[case]):
        ops._emulator_fault(case)
    ops._emulator_block_sum(64, 2)  # and the device works after a failed launch


INT_MAX = 2 ** 31 - 1
TILE, MAX_CHUNK = 128, 64 * 128  # positions per tile, at most per chunk (scan_kernels.cuh)


# 2^31 - MAX_CHUNK is the longest sequence whose last chunk ends at or below INT_MAX in any plan
@pytest.mark.parametrize('seqlen', [1, 127, 128, 129, 8191, 8192, 8193, 1_000_000, 2 ** 31 - MAX_CHUNK - 1,
                                    2 ** 31 - MAX_CHUNK, 2 ** 31 - MAX_CHUNK + 1, INT_MAX - TILE - 1, INT_MAX - TILE])
@pytest.mark.parametrize('multiprocessors', [1, 132])
def test_chunks_cover_every_position(ops, seqlen, multiprocessors):
    """plan_chunks + chunk_range of the CUDA kernels (the code the kernels run) tile [0, seqlen) exactly.

    The largest admitted seqlen is INT_MAX - 128 (make_params); above 2^31 - 8192 the last chunk's end,
    begin + chunk_len, used to overflow int, so that chunk scanned nothing and left its outputs uninitialised.
    """
    ranges = ops._chunk_ranges(1, 4, seqlen, multiprocessors)
    begins, ends = ranges[:, 0], ranges[:, 1]
    assert begins[0] == 0 and ends[-1] == seqlen
    assert torch.equal(begins[1:], ends[:-1])
    lengths = ends - begins
    assert (lengths > 0).all() and (lengths <= MAX_CHUNK).all()
    assert (lengths[:-1] % TILE == 0).all()  # every chunk but the last is whole tiles


def _device_parametrizations():
    """(test name, argnames, values) of every parametrize mark over 'device' in the test modules of tests/ops."""
    for path in sorted(pathlib.Path(__file__).parent.glob('test_*.py')):
        if "'cuda'" not in path.read_text():
            continue
        module = importlib.import_module(f'tests.ops.{path.stem}')
        for name, fn in vars(module).items():
            for mark in getattr(fn, 'pytestmark', []):
                if mark.name != 'parametrize':
                    continue
                names = [n.strip() for n in (mark.args[0].split(',') if isinstance(mark.args[0], str)
                                             else mark.args[0])]
                if 'device' in names:
                    values = [tuple(v.values) if isinstance(v, ParameterSet) else v if len(names) > 1 else (v,)
                              for v in mark.args[1]]
                    yield f'{path.stem}::{name}', names, values


def test_every_cuda_case_has_an_emulated_twin():
    """Each 'cuda' value of a device parametrisation has an 'emulated' twin with the same other values, so that no
    case of the CUDA kernels only ever skips on machines without a GPU."""
    missing, cuda_values = [], 0
    for test, names, values in _device_parametrizations():
        at = names.index('device')
        for value in values:
            if value[at] == 'cuda':
                cuda_values += 1
                twin = value[:at] + ('emulated',) + value[at + 1:]
                if twin not in values:
                    missing.append(f'{test}{value}')
    assert cuda_values > 0
    assert not missing, f'CUDA cases without an emulated twin: {missing}'
