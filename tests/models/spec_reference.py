"""A literal, functional MSVMamba forward written from the spec (docs/architecture.md), for tests only.

It works on a state dict in official key names, keeps every tensor channels-first, builds the half-resolution
routes with explicit flip / transpose / cat and projects each route sequence separately, exactly as the official
code does, and scans with the sequential reference. The model under test shares none of that code except
``selective_scan_ref`` (the definition, tested on its own).
"""
import math

import torch
import torch.nn.functional as F

from mmmsvmamba.ops import selective_scan_ref


def _ln_channels(x, sd, prefix):
    """LayerNorm over dim 1 of (B, C, ...)."""
    moved = x.movedim(1, -1)
    return F.layer_norm(moved, moved.shape[-1:], sd[prefix + '.weight'], sd[prefix + '.bias'], 1e-5).movedim(-1, 1)


def _conv1x1(x, weight, bias=None):
    return F.conv2d(x, weight.reshape(weight.shape[0], -1, 1, 1), bias)


def _depthwise(x, sd, prefix, stride, padding):
    return F.conv2d(x, sd[prefix + '.weight'], sd[prefix + '.bias'], stride, padding, groups=x.shape[1])


def _route_scan(sd, p, u, k, inner):
    """One official route: per-position projections of the sequence u (B, Di, L), then the scan."""
    dt_rank = sd[p + 'dt_projs_weight'].shape[-1]
    x_dbl = torch.einsum('bdl,cd->bcl', u, sd[p + 'x_proj_weight'][k])
    dts, b, c = torch.split(x_dbl, [dt_rank, 1, 1], dim=1)
    delta = torch.einsum('brl,dr->bdl', dts, sd[p + 'dt_projs_weight'][k])
    a = -torch.exp(sd[p + 'A_logs'][k * inner:(k + 1) * inner])
    return selective_scan_ref(u, delta, a, b[:, None], c[:, None], sd[p + 'Ds'][k * inner:(k + 1) * inner],
                              sd[p + 'dt_projs_bias'][k], delta_softplus=True)


def _ms2d(sd, p, x, v1, gate):
    proj = _conv1x1(x, sd[p + 'in_proj.weight'])
    if gate:
        proj, z = proj.chunk(2, dim=1)
    batch, inner, height, width = proj.shape
    full = F.silu(_depthwise(proj, sd, p + 'conv2d', 1, 1))
    half = F.silu(_depthwise(proj, sd, p + 'conv2d_b1', 2, 3))
    hb, wb = half.shape[-2:]
    full_k, half_k = (1, 0) if v1 else (0, 1)
    y_full = _route_scan(sd, p, full.flatten(2), full_k, inner)
    transposed = half.transpose(2, 3).flatten(2)
    seq = torch.cat([half.flatten(2).flip(-1), transposed, transposed.flip(-1)], dim=-1)
    y_half = _route_scan(sd, p, seq, half_k, inner)
    if v1:
        y_full = _ln_channels(y_full, sd, p + 'out_norm')
        y_half = _ln_channels(y_half, sd, p + 'out_norm')
    a, b, c = y_half.chunk(3, dim=-1)
    merged = (a.flip(-1).reshape(batch, inner, hb, wb) + b.reshape(batch, inner, wb, hb).transpose(2, 3)
              + c.flip(-1).reshape(batch, inner, wb, hb).transpose(2, 3))
    if v1:
        up = F.interpolate(merged, size=(height, width), mode='bilinear', align_corners=False)
    else:
        up = F.interpolate(merged, size=(height, width), mode='nearest')
    y = y_full.reshape(batch, inner, height, width) + up
    if not v1:
        y = _ln_channels(y, sd, p + 'out_norm')
    s = torch.sigmoid(F.linear(F.relu(F.linear(y.mean((2, 3)), sd[p + 'se.fc.0.weight'])), sd[p + 'se.fc.2.weight']))
    y = y * s[:, :, None, None]
    if gate:
        y = y * F.silu(z)
    return _conv1x1(y, sd[p + 'out_proj.weight'])


def _conv_ffn(sd, p, x):
    h = F.conv2d(x, sd[p + 'linear1.weight'], sd[p + 'linear1.bias'])
    h = h + F.conv2d(h, sd[p + 'dwc.weight'], sd[p + 'dwc.bias'], padding=1, groups=h.shape[1])
    return F.conv2d(F.gelu(h), sd[p + 'linear2.weight'], sd[p + 'linear2.bias'])


def _block(sd, p, x, v1, gate):
    x = x + _ms2d(sd, p + 'op.', _ln_channels(x, sd, p + 'norm'), v1, gate)
    if v1:
        return x + _conv_ffn(sd, p + 'convFFN.', _ln_channels(x, sd, p + 'norm2'))
    return x + _ln_channels(_conv_ffn(sd, p + 'convFFN.', x), sd, p + 'norm2')


def _stem(sd, x, v1):
    if v1:
        return _ln_channels(F.conv2d(x, sd['patch_embed.0.weight'], sd['patch_embed.0.bias'], stride=4), sd,
                            'patch_embed.2')
    x = _ln_channels(F.conv2d(x, sd['patch_embed.0.weight'], sd['patch_embed.0.bias'], 2, 1), sd, 'patch_embed.2')
    x = F.gelu(x)
    return _ln_channels(F.conv2d(x, sd['patch_embed.5.weight'], sd['patch_embed.5.bias'], 2, 1), sd, 'patch_embed.7')


def _downsample(sd, p, x, v1):
    if not v1:
        return _ln_channels(F.conv2d(x, sd[p + '1.weight'], sd[p + '1.bias'], 2, 1), sd, p + '3')
    height, width = x.shape[-2:]
    x = F.pad(x, (0, width % 2, 0, height % 2))
    x = torch.cat([x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 1::2]], dim=1)
    return _conv1x1(_ln_channels(x, sd, p + 'norm'), sd[p + 'reduction.weight'])


def reference_backbone(sd, x, version, gate, depths):
    """The outputs outnorm{i}(stage i) of all four stages, (B, C_i, H_i, W_i), from official-key weights."""
    v1 = version == 'v1'
    x = _stem(sd, x, v1)
    outs = []
    for i, depth in enumerate(depths):
        for j in range(depth):
            x = _block(sd, f'layers.{i}.blocks.{j}.', x, v1, gate)
        outs.append(_ln_channels(x, sd, f'outnorm{i}'))
        if i < len(depths) - 1:
            x = _downsample(sd, f'layers.{i}.downsample.', x, v1)
    return outs


def expected_stage_sizes(height, width, version):
    """v3 halves with ceil at every step; v1's stem floors H/4, its merges ceil."""
    if version == 'v1':
        sizes = [(height // 4, width // 4)]
    else:
        sizes = [(math.ceil(math.ceil(height / 2) / 2), math.ceil(math.ceil(width / 2) / 2))]
    for _ in range(3):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    return sizes
