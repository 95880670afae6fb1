"""Both scans of an MS2D block as one op, for torch.export only.

``torch.ops.mmmsvmamba.ms2d_block_scan_fwd(u, delta, A, B, C, D, delta_bias, half_u, half_delta, half_A, half_B,
half_C, half_D, half_delta_bias, sum_routes)`` returns ``(full, half)``: the full-res selective scan of the
sequences u, delta (B, Di, L) and the half-res scan of the maps half_u, half_delta (B, Di, Hb, Wb), both with
softplus on delta and float32 outputs, exactly as ``selective_scan_fwd`` and ``ms2d_half_res_scan_fwd`` (which
its eager kernel calls). An exported MS2D block calls it so that the ONNX translation
(:mod:`mmmsvmamba.deploy.onnx_scan`) can scan both as one sequence: one set of chunked-scan nodes per block
instead of two, and the padding and cutting copies of one sequence instead of two (docs/deploy.md, "The scan in
ONNX"). It has no autograd: training and eager inference call the two ops. An exported block passes no
delta_bias: its delta projection (a matmul over the channels, with a ones column padded to its dt_rank input
channels) adds the bias, where an addition is a pass over every element of delta.
"""
from typing import Optional, Tuple

import torch

__all__ = ['ms2d_block_scan']


@torch.library.custom_op('mmmsvmamba::ms2d_block_scan_fwd', mutates_args=())
def _block_scan_fwd(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                    D: torch.Tensor, delta_bias: Optional[torch.Tensor], half_u: torch.Tensor,
                    half_delta: torch.Tensor, half_A: torch.Tensor, half_B: torch.Tensor, half_C: torch.Tensor,
                    half_D: torch.Tensor, half_delta_bias: Optional[torch.Tensor], sum_routes: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    full = torch.ops.mmmsvmamba.selective_scan_fwd(u, delta, A, B, C, D, delta_bias, True, True)
    half = torch.ops.mmmsvmamba.ms2d_half_res_scan_fwd(half_u, half_delta, half_A, half_B, half_C, half_D,
                                                       half_delta_bias, True, sum_routes, True)
    return full, half


@_block_scan_fwd.register_fake
def _block_scan_fwd_fake(u, delta, A, B, C, D, delta_bias, half_u, half_delta, half_A, half_B, half_C, half_D,
                         half_delta_bias, sum_routes):
    # the two ops' own fake kernels (shapes, dtypes and the kernels' strides); imported here, not at module level,
    # so that importing mmmsvmamba.ops still does not load the extension
    from .compiled import _half_res_fwd_fake, _selective_scan_fwd_fake
    return (_selective_scan_fwd_fake(u, delta, A, B, C, D, delta_bias, True, True),
            _half_res_fwd_fake(half_u, half_delta, half_A, half_B, half_C, half_D, half_delta_bias, True, sum_routes,
                               True))


def ms2d_block_scan(full: tuple, half: tuple, sum_routes: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """``full`` = (u, delta, A, B, C, D, delta_bias) of the full-res sequences, ``half`` the same for the half-res
    maps -> (full-res y (B, Di, L), half-res y (B, Di, Hb, Wb) summed or (B, 3, Di, Hb, Wb) stacked), float32."""
    return torch.ops.mmmsvmamba.ms2d_block_scan_fwd(*full, *half, sum_routes)
