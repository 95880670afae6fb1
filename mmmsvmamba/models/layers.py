"""Small layers of MSVMamba: norms, projections, stochastic depth, squeeze-excite, ConvFFN, stems, downsamples.

Two tensor shapes exist because the two released families differ (docs/architecture.md, "Two families"): ``v3`` passes
(B, C, H, W) tensors with LayerNorm2d; ``v1`` passes (B, H, W, C) tensors with nn.LayerNorm. In memory both are
channels-last (docs/architecture.md, "Memory layout"; :func:`pointwise`). Module attribute names and Sequential slot
indices are the official state-dict keys.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor; parameters (C,) like nn.LayerNorm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_exporting():
            return self._reduced_over_channels(x)
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)

    def _reduced_over_channels(self, x: torch.Tensor) -> torch.Tensor:
        """The same norm as means over axis 1 (matmuls, :func:`_channel_mean`), for export: ONNX's
        LayerNormalization normalises trailing axes only, and the two Transposes it needs around it made MSVMamba-T
        a third slower in onnxruntime (docs/deploy.md, "Speed")."""
        centred = x - _channel_mean(x)
        x = centred * torch.rsqrt(_channel_mean(centred * centred) + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def _channel_mean(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W), the mean over channels, as a (1, C) x (C, H W) matmul: the form an export
    takes, since onnxruntime reduces over a leading axis on one thread (``ReduceMean`` over axis 1 of a
    (1, 96, 56, 56) tensor took 5x as long as this matmul, as long as two elementwise passes; docs/deploy.md)."""
    batch, channels, height, width = x.shape
    weights = torch.full((1, channels), 1.0 / channels, dtype=x.dtype, device=x.device)
    return torch.matmul(weights, x.reshape(batch, channels, height * width)).reshape(batch, 1, height, width)


def _spatial_mean(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """The mean over the spatial axes of (B, H, W, C) (``channels_last``) or (B, C, H, W) -> (B, C), float32.

    Channels-last, under torch.export, it is a (1, H W) x (H W, C) matmul: onnxruntime's ``ReduceMean`` over the
    two middle axes runs on one thread (5x the matmul's time at batch 1; docs/deploy.md)."""
    if not (channels_last and torch.compiler.is_exporting()):
        return x.mean((1, 2) if channels_last else (2, 3), dtype=torch.float32)
    batch, height, width, channels = x.shape
    ones = torch.ones(1, height * width, dtype=torch.float32, device=x.device)
    return torch.matmul(ones, x.float().reshape(batch, height * width, channels)).reshape(batch, channels) / (
        height * width)


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """1x1 convolution of (B, C, H, W) -> (B, out, H, W), computed as a matmul over the channel axis.

    ``weight`` is (out, C) or (out, C, 1, 1). The result is a permuted view of a contiguous (B, H, W, out) tensor,
    i.e. torch.channels_last memory: on CPU a matmul in that layout is several times faster than a 1x1
    convolution on (B, C, H, W) memory, and the depthwise convolutions that follow are faster on it too
    (docs/architecture.md, "Memory layout"). Under torch.export it is a 1x1 convolution: ONNX has no memory
    layouts, and without the two permutes the export's symbolic-shape tracing takes a fraction of the time.
    """
    if torch.compiler.is_exporting():
        return F.conv2d(x, weight.reshape(weight.shape[0], -1, 1, 1), bias)
    return F.linear(x.permute(0, 2, 3, 1), weight.flatten(1), bias).permute(0, 3, 1, 2)


class Linear2d(nn.Linear):
    """A 1x1 convolution on (B, C, H, W) that stores its weight as nn.Linear's (out, in), as v3 checkpoints do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise(x, self.weight, self.bias)


class Conv1x1(nn.Conv2d):
    """An nn.Conv2d with a 1x1 kernel (weight (out, in, 1, 1), the official ConvFFN keys) run by :func:`pointwise`."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise(x, self.weight, self.bias)


class ToChannelsLast(nn.Module):
    """(B, C, H, W) -> (B, H, W, C). Parameter-free; occupies the official slot 1 of the v1 stem."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class DropPath(nn.Module):
    """Stochastic depth per sample: zero a residual branch with probability ``drop_prob``, rescale the rest."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob:.3f}'


class SqueezeExcite(nn.Module):
    """Channel gating ``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))`` (the official SE module, reduction 8, both
    linears without bias); keys ``fc.0``, ``fc.2``.

    ``channels_last`` selects the layout of x: (B, H, W, C) if True, else (B, C, H, W).
    """

    def __init__(self, channels: int, reduction: int = 8, channels_last: bool = False):
        super().__init__()
        self.channels_last = channels_last
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc(_spatial_mean(x, self.channels_last).to(x.dtype))
        return x * (scale[:, None, None, :] if self.channels_last else scale[:, :, None, None])


class ConvFFN(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): 1x1 conv to ratio*C, plus a depthwise 3x3 residual, GELU, 1x1 conv back.

    Registration order (linear1, act, linear2, dwc) follows the official key order (so ``dwc`` keys come last).
    """

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        hidden = int(channels * ratio)
        self.linear1 = Conv1x1(channels, hidden)
        self.act = nn.GELU()
        self.linear2 = Conv1x1(hidden, channels)
        self.dwc = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        identity_tap = torch.zeros(1, 1, 3, 3)
        identity_tap[..., 1, 1] = 1
        self.register_buffer('identity_tap', identity_tap, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear1(x)
        # x + dwc(x) as one depthwise convolution whose centre taps are raised by 1: the residual add of the
        # widest tensor of the block costs as much as the convolution itself, and this way it costs nothing
        residual_dwc = F.conv2d(x, self.dwc.weight + self.identity_tap, self.dwc.bias, padding=1, groups=x.shape[1])
        return self.linear2(self.act(residual_dwc))


def stem_v3(channels: int) -> nn.Sequential:
    """(B, 3, H, W) -> (B, C, ceil(ceil(H/2)/2), ...): two 3x3 stride-2 convs (the official patch embed "v2").

    The Identity slots keep the official indices 0, 2, 5, 7 of the parameterised layers.
    """
    half = channels // 2
    return nn.Sequential(nn.Conv2d(3, half, 3, 2, 1), nn.Identity(), LayerNorm2d(half), nn.Identity(), nn.GELU(),
                         nn.Conv2d(half, channels, 3, 2, 1), nn.Identity(), LayerNorm2d(channels))


def stem_v1(channels: int) -> nn.Sequential:
    """(B, 3, H, W) -> (B, floor(H/4), floor(W/4), C): a 4x4 stride-4 conv, channels-last, LayerNorm (v1's stem)."""
    return nn.Sequential(nn.Conv2d(3, channels, 4, 4), ToChannelsLast(), nn.LayerNorm(channels))


def downsample_v3(channels: int) -> nn.Sequential:
    """(B, C, H, W) -> (B, 2C, ceil(H/2), ceil(W/2)): 3x3 stride-2 conv + LayerNorm2d (slots 1 and 3)."""
    return nn.Sequential(nn.Identity(), nn.Conv2d(channels, 2 * channels, 3, 2, 1), nn.Identity(),
                         LayerNorm2d(2 * channels))


class PatchMerging2D(nn.Module):
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C): v1 downsample (PatchMerging2D).

    Odd sizes are zero-padded at the bottom/right; the 2x2 neighbours are concatenated in the order
    (even row, even col), (odd row, even col), (even row, odd col), (odd row, odd col).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.reduction = nn.Linear(4 * channels, 2 * channels, bias=False)
        self.norm = nn.LayerNorm(4 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_exporting():
            return self.reduction(self.norm(self._merge_symbolic(x)))
        height, width = x.shape[1:3]
        if height % 2 or width % 2:
            x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))

    @staticmethod
    def _merge_symbolic(x: torch.Tensor) -> torch.Tensor:
        """The same 2x2 merge for torch.export, where sizes are symbolic: pad by the (possibly zero) remainders and
        split rows and columns by a reshape, so that no branch or size comparison specialises the exported graph
        (``x[:, 0::2]`` and ``x[:, 1::2]`` have sizes that are equal only once the padding is known to be even)."""
        batch, height, width, channels = x.shape
        half_h, half_w = (height + 1) // 2, (width + 1) // 2
        x = F.pad(x, (0, 0, 0, 2 * half_w - width, 0, 2 * half_h - height))
        x = x.reshape(batch, half_h, 2, half_w, 2, channels)
        return torch.cat([x[:, :, 0, :, 0], x[:, :, 1, :, 0], x[:, :, 0, :, 1], x[:, :, 1, :, 1]], dim=-1)
