"""The race checker of the emulated CUDA device (csrc/emulated_cuda/race_check.h): each planted memory hazard fails
its launch with a message naming kernel, block, threads, the variable or address and source lines, and the same
kernel with the barrier (atomic, bound) that removes the hazard runs clean.

The planted cases need the race-checking build (``make test-racecheck``, which also runs every emulated case of the
scan kernels under it with several schedule seeds); with the plain build they skip and say so.
"""
import os

import pytest

from tests.ops.compiled_helpers import require_emulated

# case -> what the report must say (the hazard, which may be either order of the two accesses when the schedule
# decides which comes first, and the threads or blocks involved)
RACES = {
    'warps_share_slot': r'block \(0, 0, 0\), thread \((0|32), 0, 0\): shared-memory write-after-write at slots \+ 0 '
                        r'bytes: writes what thread \((0|32), 0, 0\) \(warp [01], lane 0\) wrote at '
                        r'emulator_selftest\.cpp:\d+, with no __syncthreads between \(another warp',
    'lane_reads_without_syncwarp': r'thread \([01], 0, 0\): shared-memory (read-after-write|write-after-read) at '
                                   r'slots \+ 0 bytes: .* thread \([01], 0, 0\) \(warp 0, lane [01]\) .* '
                                   r'with no __syncthreads between and no __syncwarp',
    'write_after_read': r'block \(0, 0, 0\), thread \(\d+, 0, 0\): shared-memory (read-after-write|write-after-read) '
                        r'at slots \+ \d+ bytes: .*'
                        r'with no __syncthreads between',
    'uninitialised_read': r'block \(0, 0, 0\), thread \(\d+, 0, 0\): shared-memory uninitialised read at slots '
                          r'\+ \d+ bytes: reads a byte that no thread of the '
                          r'block has written \(at emulator_selftest\.cpp:\d+\)',
    'shared_out_of_bounds': r'thread \(0, 0, 0\): shared-memory access of 4 bytes outside the __shared__ variables '
                            r'the kernel declares \(slots 256 bytes\) \(at emulator_selftest\.cpp:\d+\)',
    'global_write_write': r'block \([01], 0, 0\), thread \(0, 0, 0\): global-memory (write-after-write|'
                          r'read-after-write|write-after-read) at 0x[0-9a-f]+: .* block \([01], 0, 0\), thread '
                          r'\(0, 0, 0\) (wrote|read) at emulator_selftest\.cpp:\d+ in the same launch',
    'global_read_of_other_block': r'block \([01], 0, 0\), thread \(0, 0, 0\): global-memory '
                                  r'(read-after-write|write-after-read) at 0x[0-9a-f]+: .* '
                                  r'in the same launch \(blocks of a launch are not ordered\)',
}


@pytest.fixture
def racecheck_ops():
    ops = require_emulated()
    if not ops._emulator_race_checking():
        pytest.skip('the plain emulated build does not check races: `make test-racecheck` runs these')
    return ops


@pytest.mark.parametrize('case', sorted(RACES))
def test_planted_race_is_caught(racecheck_ops, case):
    with pytest.raises(RuntimeError, match=r'emulated CUDA device: kernel .*race_kernel.*, ' + RACES[case]):
        racecheck_ops._emulator_race(case, False)
    racecheck_ops._emulator_block_sum(64, 2)  # and the device works after the failed launch


@pytest.mark.parametrize('case', sorted(RACES))
def test_fixed_twin_is_clean(racecheck_ops, case):
    racecheck_ops._emulator_race(case, True)


def test_racecheck_build_is_the_one_asked_for():
    """MMMSVMAMBA_EMULATED_RACECHECK=1 (make test-racecheck) runs the race-checking build, never silently the
    plain one; without it the plain build runs."""
    ops = require_emulated()
    assert ops._emulator_race_checking() == (os.environ.get('MMMSVMAMBA_EMULATED_RACECHECK') == '1')
