"""The chunk plan of the CUDA kernels (plan_chunks + chunk_range, the code the kernels run, through the emulated
extension's _chunk_ranges): the backward's short chunks tile the sequence, and both plans split rows only as far as
the GPU needs warps. The forward plan at the largest lengths is checked in test_emulated_cuda.py."""
import pytest
import torch

from tests.ops.compiled_helpers import require_emulated

MAX_BWD_CHUNK = 128  # scan_kernels.cuh: kMaxBwdChunk


@pytest.fixture
def ops():
    return require_emulated()


@pytest.mark.parametrize('seqlen', [1, 127, 128, 129, 255, 256, 257, 3 * 3136, 1_000_000, 10_000_001])
@pytest.mark.parametrize('multiprocessors', [1, 132])
def test_backward_chunks_cover_every_position(ops, seqlen, multiprocessors):
    ranges = ops._chunk_ranges(2, 40, seqlen, multiprocessors, backward=True)
    begins, ends = ranges[:, 0], ranges[:, 1]
    assert begins[0] == 0 and ends[-1] == seqlen
    assert torch.equal(begins[1:], ends[:-1])
    lengths = ends - begins
    assert (lengths > 0).all() and (lengths <= MAX_BWD_CHUNK).all()


# (batch, dim, seqlen) -> chunks on 132 multiprocessors, which want 32 x 132 = 4224 warps; a row of 32 channels is
# one warp, and chunks are whole 128-position units (the last one may be shorter)
@pytest.mark.parametrize('batch,dim,seqlen,chunks', [
    (128, 96, 3136, 9),       # MSVMamba-T stage 1 at batch 128: 384 row warps -> 11 chunks wanted; 25 units -> 9 x 3
    (128, 384, 196, 2),       # stage 3: 1536 row warps -> 3 wanted, but 196 positions are only 2 units
    (128, 768, 49, 1),        # stage 4: one unit, nothing to split
    (2, 96, 200 * 336, 525),  # a detection-size full-res row: 6 row warps -> 704 wanted, 525 units of 128
    (2048, 96, 3136, 1),      # 6144 row warps fill the GPU: no split
])
def test_forward_plan_splits_only_for_parallelism(ops, batch, dim, seqlen, chunks):
    assert len(ops._chunk_ranges(batch, dim, seqlen, 132)) == chunks
