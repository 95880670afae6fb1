"""MS2D: the multi-scale 2-D selective-scan token mixer of MSVMamba (the official "vms" SS2D).

One scan direction runs at full resolution, the other three at half resolution::

    P = in_proj(x)                          (B, Di, H, W)   [+ z = SiLU(second half) when gated]
    full = SiLU(dw3x3(P))                   (B, Di, H, W)   -> 1 route: row-major forward
    half = SiLU(dw7x7 stride 2 (P))         (B, Di, Hb, Wb) -> 3 routes in one scan (see mmmsvmamba.ops.ms2d_routes)
    Y = full_route + upsample(sum of half routes)           (v3: nearest; v1: bilinear, each route normed first)
    out = out_proj(SE(out_norm(Y)) [* z])

Each of the two routes ("full" and "half") owns one slice of x_proj_weight, dt_projs_weight, dt_projs_bias,
A_logs and Ds. Which slice is which differs between the families (docs/architecture.md, "Two families"): v3
stores the full-res route at index 0, v1 at index 1.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops import ms2d_block_scan, ms2d_half_res_scan, selective_scan_fn
from .layers import LayerNorm2d, Linear2d, SqueezeExcite, pointwise

D_STATE = 1  # every released MSVMamba uses d_state = 1; the compiled kernels are specialised for it
NUM_ROUTE_PARAMS = 2  # parameter sets: one for the full-res route, one shared by the three half-res routes


class MS2D(nn.Module):
    """The MS2D mixer of one block.

    Args:
        channels: block width C.
        version: ``'v3'`` (input/output (B, C, H, W)) or ``'v1'`` (input/output (B, H, W, C)).
        ssm_ratio: inner width Di = int(ssm_ratio * C).
        gate: multiply the SSM output by SiLU(z), z being the second half of the in_proj output.
    """

    def __init__(self, channels: int, version: str, ssm_ratio: float, gate: bool):
        super().__init__()
        inner = int(ssm_ratio * channels)
        # of the block width, not of Di (as the official code; it matters for v1, where Di = 2C)
        dt_rank = math.ceil(channels / 16)
        self.version, self.gate, self.inner, self.dt_rank = version, gate, inner, dt_rank
        self.channels_last = version == 'v1'
        self.full_res_route = 1 if version == 'v1' else 0

        self.x_proj_weight = nn.Parameter(torch.empty(NUM_ROUTE_PARAMS, dt_rank + 2 * D_STATE, inner))
        self.dt_projs_weight = nn.Parameter(torch.empty(NUM_ROUTE_PARAMS, inner, dt_rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(NUM_ROUTE_PARAMS, inner))
        self.A_logs = nn.Parameter(torch.empty(NUM_ROUTE_PARAMS * inner, D_STATE))
        self.Ds = nn.Parameter(torch.empty(NUM_ROUTE_PARAMS * inner))
        self.A_logs._no_weight_decay = True
        self.Ds._no_weight_decay = True

        linear = nn.Linear if self.channels_last else Linear2d
        self.out_norm = nn.LayerNorm(inner) if self.channels_last else LayerNorm2d(inner)
        self.se = SqueezeExcite(inner, reduction=8, channels_last=self.channels_last)
        self.in_proj = linear(channels, inner * (2 if gate else 1), bias=False)
        self.conv2d = nn.Conv2d(inner, inner, 3, padding=1, groups=inner)
        self.conv2d_b1 = nn.Conv2d(inner, inner, 7, stride=2, padding=3, groups=inner)
        self.out_proj = linear(inner, channels, bias=False)

    @torch.no_grad()
    def reset_ssm_parameters(self):
        """Official initialisation of the route parameters (dt_init 'random', A = -1)."""
        bound = 1 / math.sqrt(self.inner)  # nn.Linear's default, as the official x_proj Linears get
        self.x_proj_weight.uniform_(-bound, bound)
        self.dt_projs_weight.uniform_(-self.dt_rank**-0.5, self.dt_rank**-0.5)
        dt_min, dt_max, dt_floor = 1e-3, 0.1, 1e-4
        dt = torch.exp(torch.rand_like(self.dt_projs_bias) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_logs.copy_(torch.log(torch.arange(1, D_STATE + 1, dtype=torch.float32)).repeat(self.A_logs.shape[0], 1))
        self.Ds.fill_(1.0)

    def _route(self, x: torch.Tensor, route: int):
        """Per-position projections of a (B, Di, h, w) map for one route -> scan inputs (maps, not sequences).

        The projections are matmuls over the channels of the map's (B, h, w, Di) permutation (views of
        torch.channels_last memory, as :func:`pointwise`), exported too: the scan's ONNX translation reads u and
        delta in that layout, so onnxruntime reorders only u out of its blocked layout (one thread) and computes
        delta in place, where a 1x1 convolution gave delta blocked, to be reordered too (docs/deploy.md).
        """
        positions = x.permute(0, 2, 3, 1)
        dts, b, c = F.linear(positions, self.x_proj_weight[route]).split([self.dt_rank, D_STATE, D_STATE], dim=-1)
        bias = self.dt_projs_bias[route]
        exporting = torch.compiler.is_exporting()
        # exported, the bias rides in the delta projection (a ones column of its input): onnxruntime fuses no
        # addition into a MatMul of this rank, and an addition, here or in the scan, is a pass over every element
        if exporting:
            delta = F.linear(F.pad(dts, (0, 1), value=1.0), torch.cat([self.dt_projs_weight[route], bias[:, None]], 1))
        else:
            delta = F.linear(dts, self.dt_projs_weight[route])
        A = -torch.exp(self.A_logs.float()).view(NUM_ROUTE_PARAMS, self.inner, D_STATE)[route]
        D = self.Ds.view(NUM_ROUTE_PARAMS, self.inner)[route]
        return dict(u=x, delta=delta.permute(0, 3, 1, 2), A=A, B=_group_values(b), C=_group_values(c), D=D,
                    delta_bias=None if exporting else bias, delta_softplus=True)

    def _scan(self, p: torch.Tensor):
        """(B, Di, H, W) in_proj output -> full-res output (B, Di, H, W) and half-res output (float32).

        The half-res output is (B, Di, Hb, Wb) summed over the routes for v3 and (B, 3, Di, Hb, Wb) for v1.
        """
        full = F.silu(self.conv2d(p))
        half = F.silu(self.conv2d_b1(p))
        full_args = _as_sequences(self._route(full, self.full_res_route))
        half_args = self._route(half, 1 - self.full_res_route)
        sum_routes = self.version == 'v3'
        if torch.compiler.is_exporting():  # one op for both scans: ONNX scans them as one sequence
            half_args = tuple(half_args[key] for key in ('u', 'delta', 'A', 'B', 'C', 'D', 'delta_bias'))
            full_out, half_out = ms2d_block_scan(full_args[:7], half_args, sum_routes)
        else:
            full_out = selective_scan_fn(*full_args)
            half_out = ms2d_half_res_scan(**half_args, sum_routes=sum_routes)
        return _as_map(full_out, full), half_out

    def _project(self, x: torch.Tensor):
        """in_proj: the scan input P (B, Di, H, W) and, when gated, z in the block's layout (else None)."""
        if self.channels_last and torch.compiler.is_exporting():
            # P as a 1x1 convolution of the permuted input: onnxruntime then reorders the C input channels once
            # into its blocked layout (the permute fuses into that reorder) and the depthwise convolutions read
            # P in it, where permuting P (Di = 2C channels) cost a transpose and a reorder (docs/deploy.md);
            # z by its half of the weight (onnxruntime splits along the innermost axis slowly); the halves are
            # sliced, not chunked: the export folds single-output nodes, so the file stores each as its own weight
            inner = self.inner
            weight = self.in_proj.weight
            p = pointwise(x.permute(0, 3, 1, 2), weight[:inner])
            return p, F.linear(x, weight[inner:]) if self.gate else None
        if not self.gate:
            p, z = self.in_proj(x), None
        else:
            p, z = self.in_proj(x).chunk(2, dim=-1 if self.channels_last else 1)
        return (p.permute(0, 3, 1, 2) if self.channels_last else p), z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) for v3, (B, H, W, C) for v1 -> the same shape."""
        p, z = self._project(x)
        full, half = self._scan(p)
        size = full.shape[-2:]
        if self.channels_last:
            # v1: out_norm on each branch and each half-res route before fusion, then bilinear upsampling
            full = self.out_norm(full.permute(0, 2, 3, 1))
            half = _sum_routes(self.out_norm(half.permute(0, 1, 3, 4, 2))).permute(0, 3, 1, 2)
            half = F.interpolate(half, size=size, mode='bilinear', align_corners=False)
            y = full + half.permute(0, 2, 3, 1)
        else:
            # v3: legacy 'nearest' (source index floor(dst * in / out)), then one out_norm after fusion
            y = self.out_norm(full + F.interpolate(half, size=size, mode='nearest'))
        y = self.se(y)
        if self.gate:
            y = y * F.silu(z)
        return self.out_proj(y.to(x.dtype))


def _group_values(values: torch.Tensor) -> torch.Tensor:
    """B or C of a route, (B, h, w, D_STATE) -> (B, 1, D_STATE, h, w) (one group), as a reshape: with D_STATE = 1
    it moves only an axis of size 1, a view in eager mode and no Transpose in an export."""
    batch, height, width, _ = values.shape
    return values.reshape(batch, 1, D_STATE, height, width)


def _sum_routes(routes: torch.Tensor) -> torch.Tensor:
    """(B, 3, ...) -> (B, ...), the sum of the three half-res routes; under torch.export as two additions of the
    routes, since onnxruntime's ``ReduceSum`` over axis 1 runs on one thread (7x the time at batch 1;
    docs/deploy.md)."""
    if torch.compiler.is_exporting():
        first, second, third = routes.unbind(1)
        return first + second + third
    return routes.sum(1)


def _as_sequences(route_args: dict):
    """Flatten the maps of :meth:`MS2D._route` row-major into selective_scan_fn's positional arguments."""
    a = route_args
    return (_flat(a['u']), _flat(a['delta']), a['A'], a['B'].flatten(3), a['C'].flatten(3), a['D'],
            a['delta_bias'], a['delta_softplus'])


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H W). Under torch.export, written as the transpose of (B, H W, C): the ONNX
    translation of the scan computes position-major, so its transpose cancels this one, and the one before the
    flattening fuses into the convolution's output (docs/deploy.md, "The scan in ONNX"); the values are the same."""
    if torch.compiler.is_exporting():
        return x.permute(0, 2, 3, 1).flatten(1, 2).transpose(1, 2)
    return x.flatten(2)


def _as_map(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The scan output (B, C, H W) -> (B, C, H, W) shaped like ``like``; under torch.export through (B, H, W, C),
    for the reason of :func:`_flat` (a v1 block's permute to (B, H, W, C) then cancels the last transpose)."""
    if torch.compiler.is_exporting():
        batch, channels, height, width = like.shape
        return y.transpose(1, 2).reshape(batch, height, width, channels).permute(0, 3, 1, 2)
    return y.view_as(like)
